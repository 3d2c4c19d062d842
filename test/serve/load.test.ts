/** 64 concurrent streaming clients on loopback, a quarter of them leaving mid-stream. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, Agent } from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import { metricValue, postJson, sseEvents, startServer } from './helpers.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc(); gc();
  return process.memoryUsage().heapUsed;
}

/** One streaming client; with `leaveAfter`, it destroys the connection after that many events. */
function streamClient(url: string, body: unknown, agent: Agent, leaveAfter?: number): Promise<{ events: unknown[]; left: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let buf = '';
      let n = 0;
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        n = buf.split('\n\n').length - 1;
        if (leaveAfter !== undefined && n >= leaveAfter) { req.destroy(); resolve({ events: sseEvents(buf), left: true }); }
      });
      res.on('end', () => resolve({ events: sseEvents(buf), left: false }));
      res.on('error', () => {});
    });
    req.on('error', (e) => { if (leaveAfter === undefined) reject(e); });
    req.end(JSON.stringify(body));
  });
}

test('64 streaming clients, 16 leave mid-stream: the rest get complete answers, no slot or memory leaks', async (t) => {
  const { server, url, model } = await startServer({ limits: { maxSequences: 32, maxQueue: 64 } }, { stepDelayMs: 1, noEnd: true });
  const chat = `${url}/v1/chat/completions`;
  const body = (i: number) => ({ model: 'fake-gpt', temperature: 0, max_tokens: 48, stream: true, messages: [{ role: 'user', content: `client ${i} says hello` }] });
  const agent = new Agent({ keepAlive: false, maxSockets: 128 });
  try {
    const round = () => Promise.all(Array.from({ length: 64 }, (_, i) => streamClient(chat, body(i), agent, i % 4 === 3 ? 4 : undefined)));
    // warm-up round (pools, compiled code), then the baseline
    await round();
    await postJson(chat, { ...body(0), stream: false }); // fetch's own pools, too
    await server.engine.idle();
    const base = heapAfterGc();
    // every generation object must be collectable once its request is over
    const gens: WeakRef<object>[] = [];
    const submit = server.engine.submit.bind(server.engine);
    server.engine.submit = (r) => { const g = submit(r); gens.push(new WeakRef(g)); return g; };

    for (let pass = 0; pass < 2; pass++) {
      const results = await round();
      await server.engine.idle();
      for (const [i, r] of results.entries()) {
        if (i % 4 === 3) { assert.ok(r.left); continue; }
        assert.equal(r.events.at(-1), '[DONE]', `client ${i} got [DONE]`);
        const chunks = r.events.slice(0, -1) as any[];
        assert.equal(chunks.at(-1).choices[0].finish_reason, 'length', `client ${i} finished`);
        const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
        // the answer equals the same request made alone
        if (pass === 0 && i % 8 === 0) {
          const alone = await postJson(chat, { ...body(i), stream: false });
          assert.equal(text, alone.body.choices[0].message.content, `client ${i}: batched answer equals the answer alone`);
          assert.equal(alone.body.usage.completion_tokens, 48);
        }
      }
    }
    assert.ok(model.maxBatch >= 16, `continuous batching ran batches of up to ${model.maxBatch}`);
    const m = await (await fetch(`${url}/metrics`)).text();
    assert.equal(metricValue(m, 'lumen_active_sequences'), 0);
    assert.equal(metricValue(m, 'lumen_queue_depth'), 0);
    assert.ok(metricValue(m, 'lumen_requests_cancelled_total') >= 36, `cancelled: ${metricValue(m, 'lumen_requests_cancelled_total')}`);
    assert.match(m, /lumen_requests_total\{endpoint="\/v1\/chat\/completions",status="200"\} \d+/);
    assert.ok(metricValue(m, 'lumen_time_to_first_token_seconds_count') >= 100);
    assert.equal(model.live, 0, 'every model sequence was released');
    agent.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const grown = heapAfterGc() - base;
    await new Promise((r) => setTimeout(r, 10));
    gc();
    const alive = gens.filter((w) => w.deref() !== undefined).length;
    assert.ok(gens.length >= 128);
    assert.equal(alive, 0, `${alive} of ${gens.length} generations still reachable`);
    t.diagnostic(`heap ${(base / 1048576).toFixed(1)} MiB before, ${(grown / 1048576).toFixed(2)} MiB growth after 128 streams; max batch ${model.maxBatch}; cancelled ${metricValue(m, 'lumen_requests_cancelled_total')}`);
    assert.ok(grown < 4 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MiB after 128 streams`);
  } finally {
    agent.destroy();
    await server.shutdown();
  }
});
