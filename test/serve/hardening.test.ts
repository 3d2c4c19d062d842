/** Bad requests get 4xx OpenAI-shaped errors and the server keeps serving; limits, timeouts, shutdown. */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import sharp from 'sharp';
import { pngDataUrl, postJson, sseEvents, startServer, type TestServer } from './helpers.ts';

let ts: TestServer;
let chatUrl: string;
before(async () => {
  ts = await startServer({ limits: { maxBodyBytes: 256 * 1024, maxImagePixels: 64 * 64, maxImageBytes: 64 * 1024, maxTokens: 64 } });
  chatUrl = `${ts.url}/v1/chat/completions`;
});
after(() => ts.server.shutdown());

const user = (content: unknown) => ({ model: 'fake-gpt', messages: [{ role: 'user', content }] });

function assertOpenAiError(r: { status: number; body: any }, status: number, what: string): void {
  assert.equal(r.status, status, `${what}: status ${r.status}, body ${JSON.stringify(r.body).slice(0, 300)}`);
  const e = r.body?.error;
  assert.ok(e && typeof e.message === 'string' && e.message.length > 0, `${what}: error.message`);
  assert.ok(typeof e.type === 'string', `${what}: error.type`);
  assert.ok('param' in e && 'code' in e, `${what}: error.param and error.code present`);
}

async function stillServing(): Promise<void> {
  const h = await fetch(`${ts.url}/health`);
  assert.equal(h.status, 200);
  const r = await postJson(chatUrl, { ...user('still there?'), max_tokens: 4, temperature: 0 });
  assert.equal(r.status, 200);
  assert.equal(r.body.object, 'chat.completion');
}

test('malformed and mistyped requests get 400 naming the problem', async () => {
  const b64text = Buffer.from('this is not an image at all, just text').toString('base64');
  const cases: [string, unknown, number, RegExp][] = [
    ['malformed JSON', '{"model": "fake-gpt", "messages": [', 400, /not valid JSON/],
    ['JSON array body', '[1,2]', 400, /JSON object/],
    ['empty body', '', 400, /empty/],
    ['messages not an array', { model: 'fake-gpt', messages: 'hi' }, 400, /messages/],
    ['max_tokens as string', { ...user('hi'), max_tokens: '10' }, 400, /max_tokens/],
    ['temperature as string', { ...user('hi'), temperature: 'hot' }, 400, /temperature/],
    ['missing model', { messages: [{ role: 'user', content: 'hi' }] }, 400, /model: is required/],
    ['unknown role', { model: 'fake-gpt', messages: [{ role: 'wizard', content: 'hi' }] }, 400, /role must be one of.*got "wizard"/],
    ['tool role', { model: 'fake-gpt', messages: [{ role: 'tool', content: 'hi' }] }, 400, /role/],
    ['empty messages', { model: 'fake-gpt', messages: [] }, 400, /at least one message/],
    ['empty content parts', user([]), 400, /content/],
    ['null content', user(null), 400, /content/],
    ['unknown part type', user([{ type: 'audio', data: 'x' }]), 400, /part type/],
    ['bad base64', user([{ type: 'image_url', image_url: { url: 'data:image/png;base64,@@@not*base64' } }]), 400, /base64/],
    ['non-image data', user([{ type: 'image_url', image_url: { url: `data:image/png;base64,${b64text}` } }]), 400, /not a supported image/],
    ['non-image media type', user([{ type: 'image_url', image_url: { url: `data:text/plain;base64,${b64text}` } }]), 400, /media type/],
    ['remote URL', user([{ type: 'image_url', image_url: { url: 'http://169.254.169.254/latest' } }]), 400, /remote URLs are not supported/],
    ['image in assistant message', { model: 'fake-gpt', messages: [{ role: 'assistant', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }] }, 400, /only accepted in user messages/],
    ['top_p 0', { ...user('hi'), top_p: 0 }, 400, /top_p/],
    ['top_p above 1', { ...user('hi'), top_p: 1.5 }, 400, /top_p/],
    ['negative temperature', { ...user('hi'), temperature: -0.1 }, 400, /temperature/],
    ['temperature above 2', { ...user('hi'), temperature: 2.5 }, 400, /temperature/],
    ['presence_penalty above 2', { ...user('hi'), presence_penalty: 3 }, 400, /presence_penalty/],
    ['frequency_penalty below -2', { ...user('hi'), frequency_penalty: -2.5 }, 400, /frequency_penalty/],
    ['top_logprobs above 20', { ...user('hi'), logprobs: true, top_logprobs: 25 }, 400, /top_logprobs/],
    ['top_logprobs without logprobs', { ...user('hi'), top_logprobs: 2 }, 400, /requires logprobs/],
    ['n = 2', { ...user('hi'), n: 2 }, 400, /n = 1/],
    ['max_tokens 0', { ...user('hi'), max_tokens: 0 }, 400, /max_tokens/],
    ['max_tokens above the limit', { ...user('hi'), max_tokens: 40000 }, 400, /limit of 64/],
    ['fractional seed', { ...user('hi'), seed: 1.5 }, 400, /seed/],
    ['five stop strings', { ...user('hi'), stop: ['a', 'b', 'c', 'd', 'e'] }, 400, /stop/],
    ['empty stop string', { ...user('hi'), stop: '' }, 400, /stop/],
    ['tools', { ...user('hi'), tools: [{ type: 'function' }] }, 400, /tools are not supported/],
    ['prompt beyond the context', user('x'.repeat(600)), 400, /limit of 512/],
  ];
  for (const [what, body, status, re] of cases) {
    const r = await postJson(chatUrl, body);
    assertOpenAiError(r, status, what);
    assert.match(r.body.error.message, re, what);
  }
  await stillServing();
});

test('completions: bad prompts and parameters', async () => {
  const url = `${ts.url}/v1/completions`;
  const cases: [string, unknown, RegExp][] = [
    ['no prompt', { model: 'fake-gpt' }, /prompt/],
    ['prompt number', { model: 'fake-gpt', prompt: 5 }, /prompt must be/],
    ['token outside vocab', { model: 'fake-gpt', prompt: [1, 2, 99999] }, /outside the vocabulary/],
    ['logprobs above 20', { model: 'fake-gpt', prompt: 'hi', logprobs: 21 }, /logprobs/],
    ['suffix', { model: 'fake-gpt', prompt: 'hi', suffix: 'x' }, /suffix/],
    ['image token without image', { model: 'fake-gpt', prompt: 'look <|image|>' }, /images were given/],
  ];
  for (const [what, body, re] of cases) {
    const r = await postJson(url, body);
    assertOpenAiError(r, 400, what);
    assert.match(r.body.error.message, re, what);
  }
  await stillServing();
});

test('unknown model 404, unknown route 404, wrong method 405', async () => {
  assertOpenAiError(await postJson(chatUrl, { ...user('hi'), model: 'gpt-9' }), 404, 'unknown model');
  assertOpenAiError(await postJson(`${ts.url}/v1/completions`, { model: 'gpt-9', prompt: 'x' }), 404, 'unknown model (completions)');
  const nf = await fetch(`${ts.url}/v1/embeddings`, { method: 'POST', body: '{}' });
  assertOpenAiError({ status: nf.status, body: await nf.json() }, 404, 'unknown route');
  const m = await fetch(`${ts.url}/v1/models/gpt-9`);
  assertOpenAiError({ status: m.status, body: await m.json() }, 404, 'unknown model card');
  const wm = await fetch(chatUrl);
  assertOpenAiError({ status: wm.status, body: await wm.json() }, 405, 'GET on a POST route');
  await stillServing();
});

test('huge bodies get 413, by declared length and by streamed length', async () => {
  const big = JSON.stringify(user('x'.repeat(400 * 1024)));
  assertOpenAiError(await postJson(chatUrl, big), 413, 'declared length');
  // chunked upload without Content-Length
  const r = await new Promise<{ status: number; body: any }>((resolve, reject) => {
    const req = request(chatUrl, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } }, (res) => {
      let t = '';
      res.on('data', (c) => (t += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(t) }));
    });
    req.on('error', reject);
    const piece = 'x'.repeat(32 * 1024);
    req.write('{"model":"fake-gpt","messages":[{"role":"user","content":"');
    for (let i = 0; i < 12; i++) req.write(piece);
    req.end('"}]}');
  });
  assertOpenAiError(r, 413, 'chunked length');
  await stillServing();
});

test('oversize images are refused before decoding', async () => {
  const tooManyPixels = await pngDataUrl(10, 200, 10, 100); // 100x100 > 64x64 pixels
  const r1 = await postJson(chatUrl, user([{ type: 'image_url', image_url: { url: tooManyPixels } }]));
  assertOpenAiError(r1, 400, 'pixels');
  assert.match(r1.body.error.message, /pixels, above the limit/);
  assert.equal(r1.body.error.param, 'messages[0].content[0].image_url.url');
  // a noisy 60x60 PNG is small in pixels; pad a JPEG with a comment to exceed the byte limit
  const noise = Buffer.alloc(60 * 60 * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919) % 251;
  const jpeg = await sharp(noise, { raw: { width: 60, height: 60, channels: 3 } }).jpeg().withMetadata({}).toBuffer();
  const padded = Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, 0xfe, 0xff, 0xff]), Buffer.alloc(65533, 32), Buffer.from([0xff, 0xfe, 0x00, 0x10]), Buffer.alloc(14, 32), jpeg.subarray(2)]);
  const r2 = await postJson(chatUrl, user([{ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${padded.toString('base64')}` } }]));
  assertOpenAiError(r2, 400, 'bytes');
  assert.match(r2.body.error.message, /above the limit/);
  // a truncated PNG is refused as corrupt
  const png = Buffer.from((await pngDataUrl(1, 2, 3, 32)).split(',')[1]!, 'base64');
  const r3 = await postJson(chatUrl, user([{ type: 'image_url', image_url: { url: `data:image/png;base64,${png.subarray(0, 60).toString('base64')}` } }]));
  assertOpenAiError(r3, 400, 'truncated');
  await stillServing();
});

test('an API key is required on /v1 and /metrics, not on /health or the page', async () => {
  const k = await startServer({ apiKey: 'secret' });
  try {
    assertOpenAiError(await postJson(`${k.url}/v1/chat/completions`, user('hi')), 401, 'no key');
    assertOpenAiError(await postJson(`${k.url}/v1/chat/completions`, user('hi'), { Authorization: 'Bearer nope' }), 401, 'wrong key');
    assert.equal((await fetch(`${k.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${k.url}/health`)).status, 200);
    assert.equal((await fetch(`${k.url}/`)).status, 200);
    const ok = await postJson(`${k.url}/v1/chat/completions`, { ...user('hi'), max_tokens: 2 }, { Authorization: 'Bearer secret' });
    assert.equal(ok.status, 200);
  } finally { await k.server.shutdown(); }
});

test('a full queue answers 429; a slow request times out with 503; both keep serving', async () => {
  const s = await startServer({ limits: { maxSequences: 1, maxQueue: 0, requestTimeoutMs: 300 } }, { stepDelayMs: 2, noEnd: true });
  try {
    const url = `${s.url}/v1/chat/completions`;
    const long = postJson(url, { ...user('long'), max_tokens: 400, temperature: 0, stop: [] });
    while (s.server.engine.activeSequences < 1) await new Promise((r) => setTimeout(r, 2));
    const busy = await postJson(url, { ...user('hi'), max_tokens: 2 });
    assertOpenAiError(busy, 429, 'queue full');
    const timedOut = await long;
    assertOpenAiError(timedOut, 503, 'timeout');
    assert.equal(timedOut.body.error.code, 'timeout');
    // streaming timeout: an error event, then [DONE]
    const res = await fetch(url, { method: 'POST', body: JSON.stringify({ ...user('long'), max_tokens: 400, stream: true }) });
    const ev = sseEvents(await res.text());
    assert.equal(ev.at(-1), '[DONE]');
    assert.equal((ev.at(-2) as any).error.code, 'timeout');
    const ok = await postJson(url, { ...user('hi'), max_tokens: 2 });
    assert.equal(ok.status, 200);
    assert.equal(s.server.engine.activeSequences, 0);
  } finally { await s.server.shutdown(); }
});

test('graceful shutdown: in-flight streams finish, new requests are refused', async () => {
  const s = await startServer({ limits: { shutdownGraceMs: 5_000 } }, { stepDelayMs: 1, noEnd: true });
  const url = `${s.url}/v1/chat/completions`;
  const streams = [1, 2, 3].map(async (i) => {
    const res = await fetch(url, { method: 'POST', body: JSON.stringify({ ...user(`story ${i}`), max_tokens: 60, stream: true, temperature: 0 }) });
    return sseEvents(await res.text());
  });
  while (s.server.engine.activeSequences < 3) await new Promise((r) => setTimeout(r, 5));
  const down = s.server.shutdown();
  const refused = await postJson(url, user('late')).catch(() => ({ status: 503, body: { error: { message: 'connection refused', type: 'x', param: null, code: null } } }));
  assert.equal(refused.status, 503);
  for (const ev of await Promise.all(streams)) {
    assert.equal(ev.at(-1), '[DONE]');
    assert.ok(['stop', 'length'].includes((ev.at(-2) as any).choices[0].finish_reason));
  }
  await down;
});

test('graceful shutdown past the grace period ends streams with an error event and [DONE]', async () => {
  const s = await startServer({ limits: { shutdownGraceMs: 100 } }, { stepDelayMs: 2, noEnd: true });
  const url = `${s.url}/v1/chat/completions`;
  const stream = fetch(url, { method: 'POST', body: JSON.stringify({ ...user('long'), max_tokens: 450, stop: [], stream: true }) }).then(async (r) => sseEvents(await r.text()));
  while (s.server.engine.activeSequences < 1) await new Promise((r) => setTimeout(r, 5));
  await s.server.shutdown();
  const ev = await stream;
  assert.equal(ev.at(-1), '[DONE]');
  assert.equal((ev.at(-2) as any).error.code, 'shutting_down');
  assert.equal(s.server.engine.activeSequences, 0);
  assert.equal(s.model.live, 0);
});

test('a model failure is a 500 (or an error event on a stream), and the server keeps serving', async () => {
  const orig = ts.model.step.bind(ts.model);
  let fail = 2;
  ts.model.step = (items) => { if (fail > 0) { fail--; throw new Error('device lost'); } return orig(items); };
  try {
    const r = await postJson(chatUrl, { ...user('hi'), max_tokens: 3 });
    assertOpenAiError(r, 500, 'model failure');
    assert.match(r.body.error.message, /device lost/);
    const res = await fetch(chatUrl, { method: 'POST', body: JSON.stringify({ ...user('hi'), max_tokens: 3, stream: true }) });
    const ev = sseEvents(await res.text()) as any[];
    assert.equal(ev.at(-1), '[DONE]');
    assert.match(ev.at(-2).error.message, /device lost/);
  } finally { ts.model.step = orig; }
  assert.equal(ts.model.live, 0);
  await stillServing();
});
