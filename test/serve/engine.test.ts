import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, EngineBusyError, type GenerateRequest, type GenerationResult } from '../../src/serve/engine.ts';
import { logSumExp } from '../../src/serve/sampling.ts';
import type { ImageInput } from '../../src/serve/model.ts';
import { InputError } from '../../src/util/errors.ts';
import { FakeModel } from './fake-model.ts';

const greedy = { temperature: 0, topP: 1, topK: 0, presencePenalty: 0, frequencyPenalty: 0 };
const seeded = (seed: number) => ({ temperature: 1, topP: 0.9, topK: 40, seed, presencePenalty: 0.5, frequencyPenalty: 0.3 });

function image(k: number, size = 8): ImageInput {
  const pixels = new Float32Array(3 * size * size);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.sin(i * 0.37 + k) * 1.5;
  return { pixels };
}

function req(model: FakeModel, text: string, extra: Partial<GenerateRequest> = {}): GenerateRequest {
  return { prompt: model.tokenizer.encode(text), maxTokens: 24, sampling: greedy, stopTokenIds: [], ...extra };
}

async function solo(r: GenerateRequest, opts = {}): Promise<GenerationResult> {
  const e = new Engine(new FakeModel(), opts);
  return e.submit(r).result;
}

test('a request gives the same tokens alone and inside a batch (greedy and seeded)', async () => {
  const m = new FakeModel();
  const img = m.tokenizer.specialTokenId('<|image|>');
  const reqs: GenerateRequest[] = [
    req(m, 'Hello world'),
    req(m, 'the cat', { sampling: seeded(7) }),
    { ...req(m, 'look: '), prompt: [...m.tokenizer.encode('look: '), img, ...m.tokenizer.encode('?')], images: [image(1)] },
    req(m, 'a much longer prompt that is split into several prefill chunks by the engine', { sampling: seeded(99), maxTokens: 40 }),
    req(m, 'x', { maxTokens: 3 }),
  ];
  const alone = [];
  for (const r of reqs) alone.push(await solo(r));
  const e = new Engine(m, { maxSequences: 8, prefillChunk: 7 });
  const together = await Promise.all(reqs.map((r) => e.submit(r).result));
  assert.ok(m.maxBatch >= 3, `expected a real batch, max batch was ${m.maxBatch}`);
  for (let i = 0; i < reqs.length; i++) {
    assert.deepEqual(together[i]!.tokens.map((t) => t.id), alone[i]!.tokens.map((t) => t.id), `request ${i}`);
    assert.equal(together[i]!.text, alone[i]!.text);
  }
  assert.equal(m.live, 0);
});

test('a request joining a running batch does not disturb it (continuous batching)', async () => {
  const m = new FakeModel();
  const e = new Engine(m, { maxSequences: 4 });
  const first = e.submit({ ...req(m, 'Hello', { maxTokens: 30, sampling: seeded(3) }), stream: true });
  let seen = 0;
  let late: Promise<GenerationResult> | null = null;
  for await (const ev of first) {
    seen += ev.tokens.length;
    if (seen === 5) late = e.submit(req(m, 'the cat', { maxTokens: 10 })).result;
  }
  const a = await first.result, b = await late!;
  assert.ok(m.maxBatch >= 2);
  assert.deepEqual(a.tokens.map((t) => t.id), (await solo(req(m, 'Hello', { maxTokens: 30, sampling: seeded(3) }))).tokens.map((t) => t.id));
  assert.deepEqual(b.tokens.map((t) => t.id), (await solo(req(m, 'the cat', { maxTokens: 10 }))).tokens.map((t) => t.id));
  assert.equal(a.completionTokens, 30);
  assert.equal(a.finishReason, 'length');
});

test('an image changes the answer; the same image gives the same answer', async () => {
  const m = new FakeModel();
  const img = m.tokenizer.specialTokenId('<|image|>');
  const base = { prompt: [img, ...m.tokenizer.encode('what?')], maxTokens: 12, sampling: greedy, stopTokenIds: [] };
  const a = await solo({ ...base, images: [image(1)] });
  const b = await solo({ ...base, images: [image(2)] });
  const c = await solo({ ...base, images: [image(1)] });
  assert.notEqual(a.text, b.text);
  assert.equal(a.text, c.text);
  assert.equal(a.promptTokens, base.prompt.length - 1 + 4);
});

test('stop strings spanning token boundaries end the answer before them, and are never streamed', async () => {
  const m = new FakeModel();
  const r = req(m, 'Hello', { maxTokens: 60 });
  const full = await solo(r);
  const pieces = full.tokens.map((t) => m.tokenizer.decode([t.id]));
  // a stop string made of the end of token 10 and the start of token 11
  const stop = pieces[10]!.slice(-1) + pieces[11]!.slice(0, 1);
  const at = full.text.indexOf(stop);
  assert.ok(at >= 0);
  const e = new Engine(m);
  const g = e.submit({ ...r, stop: ['never-appears', stop], stream: true });
  let streamed = '';
  for await (const ev of g) {
    streamed += ev.text;
    assert.ok(full.text.slice(0, at).startsWith(streamed), `streamed text must stay a prefix of the answer: ${JSON.stringify(streamed)}`);
  }
  const res = await g.result;
  assert.equal(res.text, full.text.slice(0, at));
  assert.equal(streamed, res.text);
  assert.equal(res.finishReason, 'stop');
});

test('stop token ids end generation with finish reason stop', async () => {
  const m = new FakeModel();
  const r = req(m, 'Hello', { maxTokens: 20 });
  const full = await solo(r);
  const res = await solo({ ...r, stopTokenIds: [full.tokens[4]!.id] });
  assert.equal(res.finishReason, 'stop');
  assert.ok(res.tokens.length <= 4);
  assert.deepEqual(res.tokens.map((t) => t.id), full.tokens.slice(0, res.tokens.length).map((t) => t.id));
});

test('presence and frequency penalties follow the OpenAI formula', async () => {
  const m = new FakeModel();
  // a large presence penalty under greedy decoding forbids any repeat
  const res = await solo(req(m, 'the', { maxTokens: 80, sampling: { ...greedy, presencePenalty: 100 } }));
  const ids = res.tokens.map((t) => t.id);
  assert.equal(new Set(ids).size, ids.length);
  // frequency penalty: reproduce step by step with the model directly
  const fp = 0.8, pp = 0.3;
  const got = await solo(req(m, 'the', { maxTokens: 40, sampling: { ...greedy, presencePenalty: pp, frequencyPenalty: fp } }));
  const m2 = new FakeModel();
  const seq = m2.newSequence();
  let row = m2.step([{ seq, tokens: m2.tokenizer.encode('the') }])[0]!;
  const counts = new Map<number, number>();
  const banned = new Set(['<|pad|>', '<|image|>', '<|system|>', '<|user|>', '<|assistant|>'].map((s) => m2.tokenizer.specialTokenId(s)));
  const want: number[] = [];
  for (let i = 0; i < 40; i++) {
    let best = -1, bv = -Infinity;
    for (let v = 0; v < row.length; v++) {
      if (banned.has(v)) continue;
      const c = counts.get(v) ?? 0;
      const x = row[v]! - (c > 0 ? pp : 0) - fp * c;
      if (x > bv) { bv = x; best = v; }
    }
    want.push(best);
    counts.set(best, (counts.get(best) ?? 0) + 1);
    row = m2.step([{ seq, tokens: [best] }])[0]!;
  }
  assert.deepEqual(got.tokens.map((t) => t.id), want);
  const plain = await solo(req(m, 'the', { maxTokens: 40 }));
  assert.notDeepEqual(plain.tokens.map((t) => t.id), want, 'the penalty should change the greedy answer');
});

test('logprobs equal the log-softmax of the logits that produced each token', async () => {
  const m = new FakeModel();
  const res = await solo(req(m, 'Hello', { maxTokens: 12, logprobs: 5, sampling: seeded(11) }));
  const m2 = new FakeModel();
  const seq = m2.newSequence();
  let row = m2.step([{ seq, tokens: m2.tokenizer.encode('Hello') }])[0]!;
  for (const t of res.tokens) {
    const lse = logSumExp(row);
    assert.ok(Math.abs(t.logprob - (row[t.id]! - lse)) < 1e-9);
    assert.equal(t.top.length, 5);
    const sorted = [...row].map((v, id) => ({ id, v })).sort((a, b) => b.v - a.v || a.id - b.id).slice(0, 5);
    assert.deepEqual(t.top.map((x) => x.id), sorted.map((x) => x.id));
    for (let j = 1; j < t.top.length; j++) assert.ok(t.top[j - 1]!.logprob >= t.top[j]!.logprob);
    const probSum = [...row].reduce((s, v) => s + Math.exp(v - lse), 0);
    assert.ok(Math.abs(probSum - 1) < 1e-6);
    row = m2.step([{ seq, tokens: [t.id] }])[0]!;
  }
});

test('echo: prompt-token logprobs, chunked or not, match the model; max_tokens 0 only scores', async () => {
  const m = new FakeModel();
  const img = m.tokenizer.specialTokenId('<|image|>');
  const prompt = [...m.tokenizer.encode('Hello the cat'), img, ...m.tokenizer.encode(' world!')];
  const r: GenerateRequest = { prompt, images: [image(5)], maxTokens: 0, sampling: greedy, promptLogprobs: true, logprobs: 2 };
  const whole = await solo(r, { prefillChunk: 1000 });
  const chunked = await solo(r, { prefillChunk: 3 });
  assert.equal(whole.completionTokens, 0);
  assert.equal(whole.finishReason, 'length');
  const lp = whole.promptLogprobs!;
  assert.equal(lp.length, prompt.length);
  assert.equal(lp[0], null);
  assert.equal(lp[prompt.indexOf(img)], null);
  assert.deepEqual(chunked.promptLogprobs, lp);
  // reference: all logits in one call
  const m2 = new FakeModel();
  const out = m2.step([{ seq: m2.newSequence(), tokens: prompt, images: [image(5)], allLogits: true }])[0]!;
  const V = m2.vocabSize;
  let pos = 0;
  for (let i = 0; i < prompt.length; i++) {
    if (i > 0 && prompt[i] !== img) {
      const row = out.subarray((pos - 1) * V, pos * V);
      assert.ok(Math.abs(lp[i]!.logprob - (row[prompt[i]!]! - logSumExp(row))) < 1e-9, `token ${i}`);
      assert.equal(lp[i]!.top.length, 2);
    }
    pos += prompt[i] === img ? 4 : 1;
  }
});

test('cancelling frees the slot at once and admits the next queued request', async () => {
  const m = new FakeModel({ stepDelayMs: 1 });
  const e = new Engine(m, { maxSequences: 2, maxQueue: 2 });
  const ac = [new AbortController(), new AbortController(), new AbortController(), new AbortController()];
  const gens = ac.map((c, i) => e.submit({ ...req(m, `req ${i}`, { maxTokens: 400 }), signal: c.signal, stream: true }));
  assert.throws(() => e.submit(req(m, 'one too many')), EngineBusyError);
  assert.equal(e.activeSequences + e.queueDepth, 4);
  ac[3]!.abort(); // queued: leaves the queue
  assert.equal(e.queueDepth, 1);
  let n = 0;
  for await (const _ of gens[0]!) { if (++n === 3) break; }
  assert.equal(e.activeSequences, 2);
  ac[0]!.abort();
  assert.equal(e.queueDepth, 0, 'the freed slot went to the queued request at once');
  assert.equal(e.activeSequences, 2);
  assert.equal(m.live, 2);
  assert.equal((await gens[0]!.result).finishReason, 'cancelled');
  assert.equal((await gens[3]!.result).finishReason, 'cancelled');
  ac[1]!.abort(); ac[2]!.abort();
  await e.idle();
  assert.equal(m.live, 0);
  assert.equal(e.activeSequences, 0);
  assert.equal(e.queueDepth, 0);
  assert.equal((await gens[2]!.result).finishReason, 'cancelled');
});

test('prompts that do not fit the context are refused; generation stops at the context end', async () => {
  const m = new FakeModel({ contextLength: 32 });
  const e = new Engine(m);
  assert.throws(() => e.submit(req(m, 'x'.repeat(40))), InputError);
  assert.throws(() => e.submit({ ...req(m, 'x'), prompt: [m.tokenizer.specialTokenId('<|image|>')] }), /1 images were given|0 images were given/);
  const r = await e.submit(req(m, 'x'.repeat(20), { maxTokens: 100 })).result;
  assert.equal(r.finishReason, 'length');
  assert.equal(r.promptTokens + r.completionTokens, 32);
  const textOnly = new Engine(new FakeModel({ vision: null }));
  assert.throws(() => textOnly.submit({ ...req(m, ''), prompt: [m.tokenizer.specialTokenId('<|image|>')], images: [image(0)] }), /does not accept images/);
});

test('a model failure fails only the requests of that step, and the engine keeps serving', async () => {
  const m = new FakeModel();
  const e = new Engine(m);
  const orig = m.step.bind(m);
  let boom = true;
  m.step = (items) => { if (boom) { boom = false; throw new Error('device lost'); } return orig(items); };
  await assert.rejects(e.submit(req(m, 'Hello')).result, /device lost/);
  const ok = await e.submit(req(m, 'Hello')).result;
  assert.equal(ok.completionTokens, 24);
  assert.equal(m.live, 0);
});

test('a sequence that cannot be created fails only its request', async () => {
  const m = new FakeModel();
  const e = new Engine(m);
  const orig = m.newSequence.bind(m);
  m.newSequence = () => { m.newSequence = orig; throw new Error('out of cache memory'); };
  const bad = e.submit(req(m, 'one'));
  const good = e.submit(req(m, 'two'));
  await assert.rejects(bad.result, /out of cache memory/);
  assert.equal((await good.result).completionTokens, 24);
  assert.equal(m.live, 0);
});
