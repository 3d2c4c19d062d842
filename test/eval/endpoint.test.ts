import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { tempFiles } from './helpers.ts';
import { startStub, stubLoglik } from './stub-server.ts';
import { FakeModel } from './fake-model.ts';
import { OpenAIEndpointModel, continuationLogprob } from '../../src/eval/endpoint.ts';
import { loadTask } from '../../src/eval/task.ts';
import { evaluateTask } from '../../src/eval/scoring.ts';

const FAST = { baseMs: 1, maxMs: 5, timeoutMs: 10_000 };
// Each question says which letter the "model" prefers; the answer key agrees on 3 of 4.
const CSV = ['Q1 prefer B,w,x,y,z,B', 'Q2 prefer A,w,x,y,z,A', 'Q3 prefer D,w,x,y,z,C', 'Q4 prefer C,w,x,y,z,C'].join('\n');
const TASK = 'name: mc\nsource: {format: mmlu_csv, path: mc.csv}\nprompt: {template: "{{question}}\\n{{choices}}\\nAnswer:", continuation: " {{label}}"}\nscoring: {mode: loglikelihood}\nmetrics: [acc, acc_norm]\n';

test('endpoint loglikelihood via /v1/completions echo+logprobs: retries on 429/503, max_tokens 1 fallback, cache on rerun', async () => {
  const stub = await startStub({ rejectZeroMaxTokens: true, failures: [429, 503] });
  const t = tempFiles({ 'mc.csv': CSV, 'mc.yaml': TASK });
  try {
    const task = loadTask(t.path('mc.yaml'));
    const cacheDir = t.path('cache');
    const ep = new OpenAIEndpointModel({ url: stub.url, model: 'm', mode: 'completions', concurrency: 1, retry: FAST, cacheDir });
    const viaHttp = await evaluateTask(task, ep, { quiet: true });
    const direct = await evaluateTask(task, new FakeModel({ loglik: stubLoglik }), { quiet: true });
    assert.deepEqual(viaHttp.metrics, direct.metrics);
    assert.deepEqual(viaHttp.outcomes, direct.outcomes);
    assert.equal(viaHttp.metrics[0]!.score, 0.75);
    assert.equal(ep.stats.retries, 2);
    // 16 scored continuations + 2 failures + 1 refused max_tokens 0 (after which every request uses 1).
    assert.equal(stub.requests.length, 19);
    assert.ok(stub.requests.slice(-16).every((r) => r.body.max_tokens === 1 && r.body.echo === true && r.body.logprobs === 1));
    // A rerun with a fresh client and the same cache sends nothing.
    const before = stub.requests.length;
    const ep2 = new OpenAIEndpointModel({ url: `${stub.url}/v1/`, model: 'm', mode: 'completions', retry: FAST, cacheDir });
    const rerun = await evaluateTask(task, ep2, { quiet: true });
    assert.deepEqual(rerun.outcomes, viaHttp.outcomes);
    assert.equal(ep2.stats.requests, 0);
    assert.equal(stub.requests.length, before);
    assert.equal(ep2.cache!.hits, 16);
  } finally { t.cleanup(); await stub.close(); }
});

test('endpoint generation: chat mode sends images as data URLs, completions mode sends prompts', async () => {
  const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
  const stub = await startStub({
    reply: (text, body) => {
      if (body.messages) {
        const parts = (body.messages as { content: unknown }[])[0]!.content;
        const hasImage = Array.isArray(parts) && parts.some((p: { type: string; image_url?: { url: string } }) => p.type === 'image_url' && p.image_url!.url.startsWith('data:image/png;base64,'));
        return hasImage && text.includes('colour') ? 'red' : 'unknown';
      }
      const m = /(\d+)\+(\d+)=$/.exec(text);
      return m ? String(Number(m[1]) + Number(m[2])) : '';
    },
  });
  const t = tempFiles({
    'img/red.png': png,
    'v.jsonl': '{"image":"img/red.png","question":"What colour is the image?","answer":"red","task":"colour","split":"test"}\n{"image":"img/red.png","question":"Is it a circle?","answer":"no","task":"shape","split":"test"}\n',
    'v.yaml': 'name: vis\nsource: {format: visual_jsonl, path: v.jsonl}\nprompt: {template: "{{question}}"}\nscoring: {mode: generate, extract: {kind: exact}}\n',
    'a.yaml': 'name: ar\nsource: {format: arithmetic, n: 6, seed: 4}\nprompt: {template: "{{question}}"}\nscoring: {mode: generate, extract: {kind: numeric}, max_tokens: 5}\n',
  });
  try {
    const chat = new OpenAIEndpointModel({ url: stub.url, model: 'vlm', mode: 'chat', retry: FAST, cacheDir: null });
    const r = await evaluateTask(loadTask(t.path('v.yaml')), chat, { quiet: true });
    assert.deepEqual(r.outcomes.map((o) => o.correct), [1, 0]);
    const chatReq = stub.requests[0]!;
    assert.equal(chatReq.path, '/v1/chat/completions');
    assert.equal(chatReq.body.model, 'vlm');
    assert.equal(chatReq.body.temperature, 0);
    const comp = new OpenAIEndpointModel({ url: stub.url, model: 'lm', mode: 'completions', retry: FAST, cacheDir: null });
    const r2 = await evaluateTask(loadTask(t.path('a.yaml')), comp, { quiet: true });
    assert.equal(r2.metrics[0]!.score, 1);
    assert.equal(stub.requests.at(-1)!.path, '/v1/completions');
    assert.equal(stub.requests.at(-1)!.body.max_tokens, 5);
    // Completions mode cannot take images.
    await assert.rejects(evaluateTask(loadTask(t.path('v.yaml')), comp, { quiet: true }), /use --endpoint-mode chat/);
  } finally { t.cleanup(); await stub.close(); }
});

test('endpoint concurrency limit holds', async () => {
  const stub = await startStub({ delayMs: 20, reply: () => 'x' });
  try {
    const ep = new OpenAIEndpointModel({ url: stub.url, model: 'm', concurrency: 3, retry: FAST, cacheDir: null });
    const out = await ep.generate(Array.from({ length: 12 }, (_, i) => ({ prompt: `p${i}`, maxTokens: 1, temperature: 0 })));
    assert.equal(out.length, 12);
    assert.equal(stub.maxInFlight(), 3);
  } finally { await stub.close(); }
});

test('endpoint errors: 4xx is not retried; network errors are retried then reported', async () => {
  const stub = await startStub({ failures: [401] });
  try {
    const ep = new OpenAIEndpointModel({ url: stub.url, model: 'm', retry: FAST, cacheDir: null });
    await assert.rejects(ep.generate([{ prompt: 'x', maxTokens: 1, temperature: 0 }]), /HTTP 401/);
    assert.equal(stub.requests.length, 1);
  } finally { await stub.close(); }
  const dead = new OpenAIEndpointModel({ url: 'http://127.0.0.1:9', model: 'm', retry: { ...FAST, maxRetries: 2 }, cacheDir: null });
  await assert.rejects(dead.generate([{ prompt: 'x', maxTokens: 1, temperature: 0 }]), /gave up after 3 attempts; last failure: network error/);
  assert.equal(dead.stats.retries, 2);
});

test('continuationLogprob: sums tokens that end after the context, ignores generated tokens', () => {
  const lp: Parameters<typeof continuationLogprob>[0] = { tokens: ['Hi', ' the', 're', ' you', ' gen'], token_logprobs: [null, -1, -2, -3, -9], top_logprobs: [null, { ' the': -1 }, { 're': -2 }, { ' me': -0.5, ' you': -3 }, {}], text_offset: [0, 2, 6, 8, 12] };
  // Context "Hi th" (5 chars): " the" straddles the boundary and counts; " gen" starts at the end (12) and is ignored.
  assert.deepEqual(continuationLogprob(lp, 5, 12, 'x'), { logprob: -6, greedy: false, tokens: 3 });
  assert.deepEqual(continuationLogprob({ ...lp, top_logprobs: [null, { ' the': -1 }, { 're': -2 }, { ' you': -3 }, {}] }, 8, 12, 'x'), { logprob: -3, greedy: true, tokens: 1 });
  assert.throws(() => continuationLogprob({ tokens: ['a'] }, 0, 1, 'u'), /does not support echo \+ logprobs/);
});
