/** SIGTERM to a serving process: in-flight streams end cleanly, then the process exits 0. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { sseEvents } from './helpers.ts';

async function startChild(grace: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/serve/sigterm-child.ts', String(grace)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  return { child, url: line.toString().trim(), stderr: () => err };
}

const streamBody = (n: number) => JSON.stringify({ model: 'fake-gpt', max_tokens: n, stream: true, temperature: 0, messages: [{ role: 'user', content: 'hello' }] });

test('SIGTERM: running streams finish within the grace period, then exit 0', { timeout: 30_000 }, async () => {
  const { child, url, stderr } = await startChild(5000);
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: streamBody(150) });
  const reader = res.body!.getReader();
  await reader.read(); // the stream has started
  child.kill('SIGTERM');
  let text = '';
  const dec = new TextDecoder();
  for (;;) { const { value, done } = await reader.read(); if (done) break; text += dec.decode(value); }
  const ev = sseEvents(text) as any[];
  assert.equal(ev.at(-1), '[DONE]');
  assert.equal(ev.at(-2).choices[0].finish_reason, 'length', 'the answer ran to completion');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  assert.match(stderr(), /SIGTERM: finishing in-flight requests/);
});

test('SIGTERM past the grace period: streams end with an error event and [DONE]', { timeout: 30_000 }, async () => {
  const { child, url } = await startChild(200);
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: streamBody(480) });
  const reader = res.body!.getReader();
  await reader.read();
  child.kill('SIGTERM');
  let text = '';
  const dec = new TextDecoder();
  for (;;) { const { value, done } = await reader.read(); if (done) break; text += dec.decode(value); }
  const ev = sseEvents(text) as any[];
  assert.equal(ev.at(-1), '[DONE]');
  assert.equal(ev.at(-2).error.code, 'shutting_down');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});
