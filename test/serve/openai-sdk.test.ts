/** The official `openai` npm SDK against the server on loopback. */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { pngDataUrl, startServer, type TestServer } from './helpers.ts';

let ts: TestServer;
let client: OpenAI;
before(async () => {
  ts = await startServer({ apiKey: 'sk-test-key' });
  client = new OpenAI({ apiKey: 'sk-test-key', baseURL: `${ts.url}/v1`, maxRetries: 0, timeout: 20_000 });
});
after(() => ts.server.shutdown());

test('models list names the served model', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), ['fake-gpt']);
  assert.equal((await client.models.retrieve('fake-gpt')).id, 'fake-gpt');
});

test('chat with an image: the image changes the answer, usage is reported', async () => {
  const ask = async (url: string) => client.chat.completions.create({
    model: 'fake-gpt', temperature: 0, max_tokens: 16,
    messages: [
      { role: 'system', content: 'You describe images.' },
      { role: 'user', content: [{ type: 'text', text: 'What is in this picture?' }, { type: 'image_url', image_url: { url } }] },
    ],
  });
  const red = await ask(await pngDataUrl(220, 20, 20));
  const blue = await ask(await pngDataUrl(20, 20, 220));
  const red2 = await ask(await pngDataUrl(220, 20, 20));
  assert.equal(red.object, 'chat.completion');
  assert.equal(red.choices[0]!.message.role, 'assistant');
  assert.ok(red.choices[0]!.message.content!.length > 0);
  assert.notEqual(red.choices[0]!.message.content, blue.choices[0]!.message.content);
  assert.equal(red.choices[0]!.message.content, red2.choices[0]!.message.content);
  assert.ok(['stop', 'length'].includes(red.choices[0]!.finish_reason));
  assert.ok(red.usage!.prompt_tokens > 4, 'the image counts as its positions');
  assert.equal(red.usage!.total_tokens, red.usage!.prompt_tokens + red.usage!.completion_tokens);
});

test('streaming chat gives the same text as non-streaming, then usage, then [DONE]', async () => {
  const params = { model: 'fake-gpt', temperature: 0.8, seed: 42, max_tokens: 40, messages: [{ role: 'user' as const, content: 'Tell me a story.' }] };
  const whole = await client.chat.completions.create(params);
  const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let chunks = 0;
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined = null;
  for await (const c of stream) {
    chunks++;
    if (c.choices[0]) { text += c.choices[0].delta.content ?? ''; finish = c.choices[0].finish_reason ?? finish; }
    if (c.usage) usage = c.usage;
  }
  assert.ok(chunks > 3);
  assert.equal(text, whole.choices[0]!.message.content);
  assert.equal(finish, whole.choices[0]!.finish_reason);
  assert.deepEqual(usage, whole.usage);
});

test('chat logprobs: top_logprobs sorted, chosen token among them when greedy', async () => {
  const r = await client.chat.completions.create({ model: 'fake-gpt', temperature: 0, max_tokens: 8, logprobs: true, top_logprobs: 3, messages: [{ role: 'user', content: 'hi' }] });
  const lp = r.choices[0]!.logprobs!.content!;
  assert.ok(lp.length > 0);
  for (const t of lp) {
    assert.equal(t.top_logprobs.length, 3);
    assert.equal(t.top_logprobs[0]!.token, t.token, 'greedy picks the most likely token');
    assert.ok(Math.abs(t.top_logprobs[0]!.logprob - t.logprob) < 1e-12);
    assert.ok(t.logprob <= 0);
  }
  assert.equal(lp.map((t) => t.token).join(''), r.choices[0]!.message.content);
});

test('completions with echo and logprobs score the prompt (loglikelihood evaluation)', async () => {
  const prompt = 'The cat sat on the mat';
  const r = await client.completions.create({ model: 'fake-gpt', prompt, echo: true, logprobs: 2, max_tokens: 0 });
  const c = r.choices[0]!;
  assert.equal(c.text, prompt);
  const lp = c.logprobs!;
  assert.equal(lp.tokens!.join(''), prompt);
  assert.equal(lp.token_logprobs![0], null);
  assert.ok(lp.token_logprobs!.slice(1).every((x) => typeof x === 'number' && x < 0));
  assert.equal(lp.text_offset![0], 0);
  assert.equal(lp.text_offset!.at(-1), prompt.length - lp.tokens!.at(-1)!.length);
  assert.equal(r.usage!.completion_tokens, 0);
  // the same continuation scored as part of the prompt equals its logprob when generated greedily
  const gen = await client.completions.create({ model: 'fake-gpt', prompt: 'The cat', max_tokens: 5, temperature: 0, logprobs: 1 });
  const cont = gen.choices[0]!.text;
  const scored = await client.completions.create({ model: 'fake-gpt', prompt: 'The cat' + cont, echo: true, logprobs: 0, max_tokens: 0 });
  const n = gen.choices[0]!.logprobs!.tokens!.length;
  const tail = scored.choices[0]!.logprobs!.token_logprobs!.slice(-n);
  gen.choices[0]!.logprobs!.token_logprobs!.forEach((x, i) => assert.ok(Math.abs(x! - tail[i]!) < 1e-9));
});

test('errors come back as OpenAI errors through the SDK', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
    (e: unknown) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found');
  await assert.rejects(client.chat.completions.create({ model: 'fake-gpt', temperature: 5, messages: [{ role: 'user', content: 'hi' }] }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');
  const bad = new OpenAI({ apiKey: 'wrong', baseURL: `${ts.url}/v1`, maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
  await assert.rejects(client.chat.completions.create({ model: 'fake-gpt', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && /remote URLs are not supported/.test(e.message));
});
