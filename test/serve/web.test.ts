/** End to end: the chat page in headless Chromium uploads an image, asks, and streams the answer. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { pngDataUrl, postJson, startServer } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

type Page = Awaited<ReturnType<Awaited<ReturnType<typeof chromium.launch>>['newPage']>>;

/** Opens the chat page once it names the model, with greedy sampling and at most `maxTokens`. */
async function openGreedy(page: Page, url: string, maxTokens: number): Promise<void> {
  await page.goto(url);
  // browser-side functions reach the DOM through `(globalThis as any)`: the project's type check has no DOM library
  await page.waitForFunction(() => (globalThis as any).document.getElementById('model').textContent.includes('fake-gpt'));
  await page.click('#settings-toggle');
  await page.fill('#temperature', '0');
  await page.fill('#max_tokens', String(maxTokens));
  await page.dispatchEvent('#temperature', 'change');
}

/** Attaches the PNG of a data URL, asks `question` and waits until the first answer is done. */
async function askWithImage(page: Page, dataUrl: string, question: string): Promise<void> {
  await page.setInputFiles('#attach', { name: 'image.png', mimeType: 'image/png', buffer: Buffer.from(dataUrl.split(',')[1]!, 'base64') });
  await page.waitForSelector('#attachments img');
  await page.fill('#input', question);
  await page.click('#send');
  await page.waitForSelector('.msg.assistant[data-state=done]', { timeout: 30_000 });
}

test('chat page: upload an image, ask, see a streamed answer; paste an image; reset', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent (apt-get install chromium)`, timeout: 60_000 }, async () => {
  const { server, url } = await startServer({}, { stepDelayMs: 3, noEnd: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  try {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await openGreedy(page, url, 30);
    const dataUrl = await pngDataUrl(200, 40, 40, 32);
    const question = 'What is in this image?';
    await askWithImage(page, dataUrl, question);

    assert.equal(await page.locator('.msg.user img').count(), 1, 'the image is shown inline');
    const answer = (await page.locator('.msg.assistant .text').first().textContent())!;
    const chunks = Number(await page.locator('.msg.assistant').first().getAttribute('data-chunks'));
    assert.ok(answer.length > 0);
    assert.ok(chunks > 1, `the answer arrived in ${chunks} streamed pieces`);
    assert.equal(await page.locator('.msg.error').count(), 0);
    // the page's answer is the server's greedy answer to the same request
    const direct = await postJson(`${url}/v1/chat/completions`, {
      model: 'fake-gpt', temperature: 0, max_tokens: 30,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl } }, { type: 'text', text: question }] }],
    });
    assert.equal(answer, direct.body.choices[0].message.content);

    // paste an image into the message box
    const pasted = (await pngDataUrl(30, 30, 220, 16)).split(',')[1]!;
    await page.evaluate((b64) => {
      const g = globalThis as any;
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new g.DataTransfer();
      dt.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
      g.document.getElementById('input').dispatchEvent(new g.ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, pasted);
    await page.waitForSelector('#attachments img');
    await page.fill('#input', 'And this one?');
    await page.press('#input', 'Enter');
    await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.msg.assistant[data-state=done]').length === 2, null, { timeout: 30_000 });
    assert.equal(await page.locator('.msg.user img').count(), 2);
    const second = (await page.locator('.msg.assistant .text').nth(1).textContent())!;
    assert.ok(second.length > 0);

    await page.click('#reset');
    assert.equal(await page.locator('.msg').count(), 0, 'reset clears the conversation');
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
    await server.shutdown();
  }
});

test('chat page: a model trained with the question first gets the text part before the image', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent (apt-get install chromium)`, timeout: 60_000 }, async () => {
  const { server, url } = await startServer({}, { noEnd: true, vision: { imageTokens: 4, imageSize: 8, imagePlacement: 'last' } });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  try {
    const card = (await (await fetch(`${url}/v1/models`)).json()) as { data: { image_placement?: string }[] };
    assert.equal(card.data[0].image_placement, 'last');
    const page = await browser.newPage();
    await openGreedy(page, url, 20);
    const dataUrl = await pngDataUrl(20, 200, 40, 32);
    const question = 'What colour is it?';
    await askWithImage(page, dataUrl, question);
    const answer = (await page.locator('.msg.assistant .text').first().textContent())!;
    const ask = async (content: unknown[]) => (await postJson(`${url}/v1/chat/completions`, { model: 'fake-gpt', temperature: 0, max_tokens: 20, messages: [{ role: 'user', content }] })).body.choices[0].message.content;
    const text = { type: 'text', text: question }, image = { type: 'image_url', image_url: { url: dataUrl } };
    const textFirst = await ask([text, image]), imageFirst = await ask([image, text]);
    assert.notEqual(textFirst, imageFirst, 'the fake model answers differently in the two orders');
    assert.equal(answer, textFirst);
  } finally {
    await browser.close();
    await server.shutdown();
  }
});
