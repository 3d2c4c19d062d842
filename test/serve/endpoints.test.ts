/** Endpoint details beyond the SDK test: batched and streamed completions, stop strings, metrics, the page. */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue, postJson, sseEvents, startServer, type TestServer } from './helpers.ts';

let ts: TestServer;
before(async () => { ts = await startServer(); });
after(() => ts.server.shutdown());

test('completions: several prompts give one choice each, equal to asking one by one', async () => {
  const url = `${ts.url}/v1/completions`;
  const prompts = ['Hello', 'the cat', 'zzz'];
  const r = await postJson(url, { model: 'fake-gpt', prompt: prompts, max_tokens: 6, temperature: 0 });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.choices.map((c: any) => c.index), [0, 1, 2]);
  let completion = 0, prompt = 0;
  for (const [i, p] of prompts.entries()) {
    const one = await postJson(url, { model: 'fake-gpt', prompt: p, max_tokens: 6, temperature: 0 });
    assert.equal(r.body.choices[i].text, one.body.choices[0].text);
    assert.equal(r.body.choices[i].finish_reason, one.body.choices[0].finish_reason);
    completion += one.body.usage.completion_tokens; prompt += one.body.usage.prompt_tokens;
  }
  assert.deepEqual(r.body.usage, { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion });
  const ids = await postJson(url, { model: 'fake-gpt', prompt: ts.model.tokenizer.encode('Hello'), max_tokens: 6, temperature: 0 });
  assert.equal(ids.body.choices[0].text, r.body.choices[0].text, 'token-id prompts work like text');
});

test('completions streaming with echo: the prompt first, then the same text as non-streamed', async () => {
  const body = { model: 'fake-gpt', prompt: 'Once upon', max_tokens: 12, temperature: 0, echo: true, logprobs: 1 };
  const whole = await postJson(`${ts.url}/v1/completions`, body);
  const res = await fetch(`${ts.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }) });
  assert.match(res.headers.get('content-type')!, /text\/event-stream/);
  const ev = sseEvents(await res.text()) as any[];
  assert.equal(ev.at(-1), '[DONE]');
  assert.equal(ev[0].choices[0].text, 'Once upon');
  const text = ev.slice(0, -1).flatMap((e) => e.choices.map((c: any) => c.text)).join('');
  assert.equal(text, whole.body.choices[0].text);
  assert.deepEqual(ev.at(-2).usage, whole.body.usage);
  assert.equal(ev.at(-2).choices.length, 0);
  const streamed = { tokens: [] as string[], token_logprobs: [] as (number | null)[], text_offset: [] as number[] };
  for (const e of ev.slice(0, -2)) {
    const lp = e.choices[0]?.logprobs;
    if (lp) { streamed.tokens.push(...lp.tokens); streamed.token_logprobs.push(...lp.token_logprobs); streamed.text_offset.push(...lp.text_offset); }
  }
  const w = whole.body.choices[0].logprobs;
  assert.deepEqual(streamed, { tokens: w.tokens, token_logprobs: w.token_logprobs, text_offset: w.text_offset }, 'streamed logprobs, prompt included, equal the whole reply');
});

test('chat stop strings end the answer before them (streamed and not)', async () => {
  const url = `${ts.url}/v1/chat/completions`;
  const base = { model: 'fake-gpt', temperature: 0, max_tokens: 40, messages: [{ role: 'user', content: 'Say something long.' }] };
  const full = (await postJson(url, base)).body.choices[0].message.content as string;
  const stop = full.slice(5, 8);
  const cut = full.slice(0, full.indexOf(stop));
  const r = await postJson(url, { ...base, stop: [stop, 'never'] });
  assert.equal(r.body.choices[0].message.content, cut);
  assert.equal(r.body.choices[0].finish_reason, 'stop');
  const res = await fetch(url, { method: 'POST', body: JSON.stringify({ ...base, stop, stream: true }) });
  const ev = sseEvents(await res.text()) as any[];
  assert.equal(ev.slice(0, -1).map((e) => e.choices[0]?.delta?.content ?? '').join(''), cut);
  assert.equal(ev.at(-2).choices[0].finish_reason, 'stop');
});

test('metrics count requests by status, tokens, latencies; health reports load', async () => {
  const before = await (await fetch(`${ts.url}/metrics`)).text();
  const ok0 = metricValue(before.split('\n').filter((l) => l.includes('endpoint="/v1/chat/completions",status="200"')).join('\n'), 'lumen_requests_total') || 0;
  const gen0 = metricValue(before, 'lumen_generation_tokens_total');
  await postJson(`${ts.url}/v1/chat/completions`, { model: 'fake-gpt', max_tokens: 3, temperature: 0, messages: [{ role: 'user', content: 'hi' }] });
  await postJson(`${ts.url}/v1/chat/completions`, { model: 'fake-gpt', messages: [] });
  const m = await (await fetch(`${ts.url}/metrics`)).text();
  const line = (s: string) => m.split('\n').find((l) => l.startsWith(s));
  assert.equal(Number(line('lumen_requests_total{endpoint="/v1/chat/completions",status="200"}')!.split(' ')[1]), ok0 + 1);
  assert.ok(Number(line('lumen_requests_total{endpoint="/v1/chat/completions",status="400"}')!.split(' ')[1]) >= 1);
  assert.ok(metricValue(m, 'lumen_generation_tokens_total') > gen0);
  assert.ok(metricValue(m, 'lumen_prompt_tokens_total') > 0);
  assert.match(m, /# TYPE lumen_time_to_first_token_seconds histogram\nlumen_time_to_first_token_seconds_bucket\{le="0.005"\} \d+/);
  assert.match(m, /lumen_time_per_output_token_seconds_bucket\{le="\+Inf"\} \d+/);
  assert.equal(metricValue(m, 'lumen_active_sequences'), 0);
  assert.equal(metricValue(m, 'lumen_queue_depth'), 0);
  const h = await (await fetch(`${ts.url}/health`)).json();
  assert.deepEqual(h, { status: 'ok', model: 'fake-gpt', active_sequences: 0, queue_depth: 0 });
});

test('the chat page is one self-contained HTML file', async () => {
  const res = await fetch(`${ts.url}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /text\/html/);
  const html = await res.text();
  assert.match(html, /<script>/);
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)="(https?:)?\/\//, 'no external resources');
  assert.doesNotMatch(html, /innerHTML/, 'model text is never parsed as HTML');
});
