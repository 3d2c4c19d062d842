/**
 * Serving benchmark (`npm run bench:serve`): an HTTP load generator on loopback against
 * `lumen serve` running in a child process (so client and server do not share an event loop).
 *
 * 1. Single stream: one streaming /v1/completions request at a time, greedy, `ignore_eos`, a fixed
 *    number of tokens; time to first token (client side, request sent -> first text chunk) and
 *    decode tokens/s from the server's per-token latency histogram (/metrics before and after
 *    each request; the client-side estimate is printed too). Warm-up (at least 3 requests and
 *    2 s: V8 compiles the decoding path), then the median of
 *    several repetitions.
 * 2. Aggregate: 1, 8 and 32 concurrent closed-loop clients, each sending a bounded number of
 *    requests; generated tokens (from `usage`) / wall time.
 * 3. Peer (PyTorch): greedy decoding of the same weights with a KV cache at batch 1 and 8, same
 *    thread count, via `bench/peers/torch_serve.py --model DIR --tokens N --batch B --threads T`,
 *    which prints `{"tokens_per_s": x}`. It runs only with --model and when that script exists;
 *    otherwise the peer columns are null and the reason is printed.
 *
 * Model: --model DIR (through src/serve/load.ts), else the deterministic fake model of the tests
 * (test/serve/fake-model.ts) with --fake-step-ms of blocking work per batched step, which measures
 * the engine and HTTP path, not a network. Writes bench/results/serve.json.
 * Options: --model DIR, --fake-step-ms N (default 4), --tokens N (default 64), --reps N (default 5),
 * --threads N (LUMEN_THREADS for the server and the peer; default 2), --quick.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { parseArgs } from 'node:util';
import { writeJsonAtomic } from '../src/util/fs.ts';

interface Row { case: string; unit: string; lumen: number; peer: string; peer_value: number | null; ratio: number | null; [k: string]: unknown }

const { values: opt } = parseArgs({
  options: {
    model: { type: 'string' }, 'fake-step-ms': { type: 'string', default: '4' }, tokens: { type: 'string', default: '64' },
    reps: { type: 'string', default: '5' }, threads: { type: 'string', default: '2' }, quick: { type: 'boolean', default: false },
    'serve-child': { type: 'boolean', default: false },
  },
});
const TOKENS = Number(opt.tokens), REPS = opt.quick ? 2 : Number(opt.reps), THREADS = Number(opt.threads);
const PEER_SCRIPT = 'bench/peers/torch_serve.py';
const PROMPT = 'The quick brown fox jumps over the lazy dog. Once upon a time';

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN; };
const spread = (xs: number[], d = 1): string => `${Math.min(...xs).toFixed(d)}..${Math.max(...xs).toFixed(d)}`;

/** Child mode: start the server and print its URL. */
async function serveChild(): Promise<void> {
  const { createServer } = await import('../src/serve/server.ts');
  let model;
  if (opt.model) model = await (await import('../src/serve/load.ts')).loadInferenceModel(opt.model);
  else model = new (await import('../test/serve/fake-model.ts')).FakeModel({ stepDelayMs: Number(opt['fake-step-ms']), contextLength: 4096 });
  const server = createServer({ model, limits: { maxSequences: 32, maxQueue: 256, maxTokens: 4096 } });
  const url = await server.listen(0, '127.0.0.1');
  console.log(JSON.stringify({ url, model: model.name }));
  process.on('SIGTERM', () => { void server.shutdown().then(() => process.exit(0)); });
}

function startServer(): Promise<{ child: ChildProcess; url: string; model: string }> {
  const args = ['--import', 'tsx', 'bench/serve.ts', '--serve-child', '--fake-step-ms', String(opt['fake-step-ms'])];
  if (opt.model) args.push('--model', opt.model);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LUMEN_THREADS: String(THREADS) } });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve({ child, ...(JSON.parse(buf.slice(0, nl)) as { url: string; model: string }) });
    });
    child.on('exit', (code) => reject(new Error(`server child exited with ${code}`)));
  });
}

interface StreamStats { ttftMs: number; decodeTps: number; tokens: number; totalMs: number }

/** One streaming completion; times the chunks as they arrive. */
function streamOnce(url: string, model: string, agent: Agent): Promise<StreamStats> {
  const body = JSON.stringify({ model, prompt: PROMPT, max_tokens: TOKENS, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = 0, last = 0, tokens = 0, buf = '';
    const req = request(`${url}/v1/completions`, { method: 'POST', agent, headers: { 'Content-Type': 'application/json' } }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`HTTP ${res.statusCode}`)); res.resume(); return; }
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(6, cut); buf = buf.slice(cut + 2);
          if (block === '[DONE]') continue;
          const ev = JSON.parse(block) as { choices: { text: string }[]; usage?: { completion_tokens: number } | null; error?: { message: string } };
          if (ev.error) { reject(new Error(ev.error.message)); return; }
          if (ev.usage) tokens = ev.usage.completion_tokens;
          if (ev.choices[0]?.text) { const now = performance.now(); if (!first) first = now; last = now; }
        }
      });
      res.on("end", () => resolve({ ttftMs: first - t0, decodeTps: (tokens - 1) / ((last - first) / 1000), tokens, totalMs: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The server's per-token latency histogram (sum, count): decode speed measured where tokens are
 * made, immune to the client receiving several chunks in one read.
 */
async function tokenLatency(url: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (name: string) => Number(text.split('\n').find((l) => l.startsWith(name + ' '))!.split(' ')[1]);
  return { sum: get('lumen_time_per_output_token_seconds_sum'), count: get('lumen_time_per_output_token_seconds_count') };
}

/** `clients` closed-loop clients, `perClient` requests each; generated tokens per second overall. */
async function aggregate(url: string, model: string, clients: number, perClient: number): Promise<{ tps: number; failed: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  let tokens = 0, failed = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    for (let i = 0; i < perClient; i++) {
      try {
        const s = await streamOnce(url, model, agent); // (not `tokens += await ...`: that reads `tokens` before the await)
        tokens += s.tokens;
      } catch { failed++; }
    }
  }));
  agent.destroy();
  return { tps: tokens / ((performance.now() - t0) / 1000), failed };
}

/** The PyTorch peer at a batch size, or the reason it cannot run. */
function peer(batch: number): { tps: number | null; note: string } {
  if (!opt.model) return { tps: null, note: 'no --model: the PyTorch peer needs real weights' };
  if (!existsSync(PEER_SCRIPT)) return { tps: null, note: `${PEER_SCRIPT} not written yet` };
  const r = spawnSync('/usr/bin/python3', [PEER_SCRIPT, '--model', opt.model, '--tokens', String(TOKENS), '--batch', String(batch), '--threads', String(THREADS), '--reps', String(REPS)], { encoding: 'utf8' });
  if (r.status !== 0) return { tps: null, note: `peer failed: ${r.stderr.trim().split('\n').pop()}` };
  return { tps: (JSON.parse(r.stdout.trim().split('\n').pop()!) as { tokens_per_s: number }).tokens_per_s, note: 'pytorch, greedy, KV cache' };
}

async function main(): Promise<void> {
  if (opt['serve-child']) return serveChild();
  const { child, url, model } = await startServer();
  const rows: Row[] = [];
  try {
    const label = opt.model ? `${model} from ${opt.model}` : `fake model (${opt['fake-step-ms']} ms of blocking work per batched step; engine + HTTP path only)`;
    console.log(`serve bench: ${label}; ${TOKENS} tokens per request, greedy, loopback, ${THREADS} thread(s)`);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    // Warm-up: at least 3 requests and 2 s, so that V8 has compiled the decoding path (one
    // 64-token request left single-stream decode at about a third of its steady speed).
    for (let w = 0, until = Date.now() + 2000; w < 3 || Date.now() < until; w++) await streamOnce(url, model, agent);
    const single: StreamStats[] = [];
    const serverTps: number[] = [];
    for (let i = 0; i < REPS; i++) {
      const before = await tokenLatency(url);
      single.push(await streamOnce(url, model, agent));
      const after = await tokenLatency(url);
      serverTps.push((after.count - before.count) / (after.sum - before.sum));
    }
    agent.destroy();
    const tps1 = median(serverTps), ttft = median(single.map((s) => s.ttftMs));
    console.log(`single stream: decode ${tps1.toFixed(1)} tokens/s (${spread(serverTps)}; client-side estimate ${median(single.map((s) => s.decodeTps)).toFixed(1)}), TTFT ${ttft.toFixed(1)} ms (${spread(single.map((s) => s.ttftMs))})`);

    const agg: Record<number, { tps: number; failed: number }> = {};
    for (const c of [1, 8, 32]) {
      await aggregate(url, model, c, 1); // warm-up at this concurrency
      const runs = [];
      for (let i = 0; i < Math.max(1, Math.ceil(REPS / 2)); i++) runs.push(await aggregate(url, model, c, opt.quick ? 1 : 2));
      agg[c] = { tps: median(runs.map((r) => r.tps)), failed: runs.reduce((s, r) => s + r.failed, 0) };
      console.log(`${String(c).padStart(2)} clients: ${agg[c]!.tps.toFixed(1)} tokens/s aggregate (${spread(runs.map((r) => r.tps))}), ${agg[c]!.failed} failed requests`);
    }

    const p1 = peer(1), p8 = peer(8);
    if (p1.tps === null) console.log(`PyTorch peer: ${p1.note}`);
    rows.push({ case: 'decode single-stream tokens/s vs pytorch', unit: 'tokens/s', lumen: tps1, peer: 'pytorch batch 1', peer_value: p1.tps, ratio: p1.tps ? tps1 / p1.tps : null, spread_lumen: spread(serverTps), measured: 'server side: 1 / mean time between tokens (lumen_time_per_output_token_seconds)', note: p1.note, model: label });
    rows.push({ case: 'decode batch-8 tokens/s vs pytorch', unit: 'tokens/s', lumen: agg[8]!.tps, peer: 'pytorch batch 8', peer_value: p8.tps, ratio: p8.tps ? agg[8]!.tps / p8.tps : null, note: `lumen: 8 concurrent HTTP clients; ${p8.note}`, model: label });
    rows.push({ case: 'aggregate 32 clients vs single-stream', unit: 'tokens/s', lumen: agg[32]!.tps, peer: 'lumen 1 client', peer_value: agg[1]!.tps, ratio: agg[32]!.tps / agg[1]!.tps, failed_requests: agg[32]!.failed, model: label });
    rows.push({ case: 'time to first token, single stream', unit: 'ms', lumen: ttft, peer: 'none', peer_value: null, ratio: null, spread_lumen: spread(single.map((s) => s.ttftMs)), model: label });
    rows.push({ case: 'aggregate 8 clients vs single-stream', unit: 'tokens/s', lumen: agg[8]!.tps, peer: 'lumen 1 client', peer_value: agg[1]!.tps, ratio: agg[8]!.tps / agg[1]!.tps, failed_requests: agg[8]!.failed, model: label });
  } finally {
    child.kill('SIGTERM');
  }
  const f = (x: number | null, d = 2) => (x === null ? '—' : x.toFixed(d));
  console.log('\n' + ['case'.padEnd(42), 'unit'.padEnd(9), 'lumen'.padStart(9), 'peer'.padEnd(16), 'peer value'.padStart(10), 'ratio'.padStart(7)].join(' '));
  for (const r of rows) console.log([r.case.padEnd(42), r.unit.padEnd(9), f(r.lumen, 1).padStart(9), r.peer.padEnd(16), f(r.peer_value, 1).padStart(10), f(r.ratio).padStart(7)].join(' '));
  if (!opt.quick) writeJsonAtomic('bench/results/serve.json', { bench: 'serve', rows });
}

main().catch((e) => { console.error(e); process.exit(1); });
