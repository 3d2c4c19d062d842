/**
 * Kernel benchmark (`npm run bench:kernels`): the native backend against its peers, same machine,
 * same run, same thread count.
 *
 * 1. matmul GFLOP/s vs numpy (OpenBLAS) through `python3 bench/peers/numpy_matmul.py`: square
 *    256..2048, and the 15 GEMMs of one training step of the reference configuration ("ref.":
 *    6 layers, width 256, context 256, batch 16 -> 4096 token rows, MLP 1024, vocab 4096): for each
 *    of qkv, attn-out, mlp-up, mlp-down, lm-head the forward Y = X W (X (4096, in), W (in, out)),
 *    dX = dY W^T and dW = X^T dY. Case names are `matmul <m>x<n>x<k>`; transposed operands are
 *    transposed views for numpy too. numpy and Lumen measurements of each case are interleaved
 *    in 4 rounds (the machine is shared: both sides see the same load); the median of all
 *    repetitions is reported with the spread (max - min) / median, and the best repetition of
 *    each side (`lumen_best`, `peer_best`, `ratio_best`) for runs on a loaded machine.
 * 2. GB/s (bytes read + written / time) of the elementwise, norm, softmax and cross-entropy
 *    kernels on operands beyond the caches — 4x the last-level cache, at least 32 MiB each (on a
 *    machine with a 32 MiB L3, 32 MiB operands were partly cache-resident and the memcpy
 *    reference swung between 110 and 225 GB/s from run to run) — beside a plain memory copy (the
 *    addon's parallel memcpy, same threads) moving the same number of bytes; ratio = kernel / copy.
 *
 * Threads: LUMEN_THREADS or the machine's cores; numpy gets OPENBLAS_NUM_THREADS = OMP_NUM_THREADS
 * = the same. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which this environment sets on some
 * processors for old OpenBLAS builds, are removed for the numpy child only (they make the current
 * numpy use a slower kernel); the core type OpenBLAS then picks is printed and recorded.
 *
 * Writes bench/results/kernels.json. Takes about 1-2 minutes.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { availableParallelism, loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Backend, Buf } from '../src/tensor/backend.ts';
import { CpuBuf } from '../src/tensor/backends/cpu-buf.ts';
import { getThreads, loadAddon, loadNativeBackend, nativeLoadError } from '../src/tensor/backends/native.ts';
import { Rng } from '../src/tensor/rng.ts';
import { writeJsonAtomic } from '../src/util/fs.ts';

interface Row {
  case: string; unit: string; lumen: number; peer: string; peer_value: number | null; ratio: number | null;
  lumen_spread: number; peer_spread: number | null;
  /** Best repetition of each side and their ratio: on a loaded machine, the closest to what the hardware does. */
  lumen_best: number; peer_best: number | null; ratio_best: number | null;
}
interface MatmulCase { name: string; m: number; n: number; k: number; transA: boolean; transB: boolean }

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = 4;
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const spreadOf = (xs: number[]): number => (Math.max(...xs) - Math.min(...xs)) / median(xs);
const now = (): number => performance.now() / 1000;

/** Repetitions of fn after one warm-up call: at least minReps and minTime seconds; returns seconds per call. */
function timeIt(fn: () => void, minReps = 3, minTime = 0.1): number[] {
  fn();
  const out: number[] = [];
  const start = now();
  while (out.length < minReps || (now() - start < minTime && out.length < 50)) {
    const t = now();
    fn();
    out.push(now() - t);
  }
  return out;
}

function rand(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform() * 2 - 1;
  return a;
}

/** The numpy child: one JSON line per case in, one out. */
class NumpyPeer {
  private lines: AsyncIterator<string>;
  readonly info: Promise<{ numpy?: string; blas?: string; blas_threads?: number }>;
  private proc: ChildProcessByStdio<Writable, Readable, null>;
  constructor(threads: number) {
    const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
    delete env.OPENBLAS_CORETYPE;
    delete env.OPENBLAS_L2_SIZE;
    this.proc = spawn(process.env.LUMEN_PYTHON ?? 'python3', [join(root, 'bench', 'peers', 'numpy_matmul.py')], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    this.lines = createInterface({ input: this.proc.stdout })[Symbol.asyncIterator]();
    this.info = this.next().then((o) => (o as { info: { numpy?: string; blas?: string } }).info);
  }
  private async next(): Promise<unknown> {
    const r = await this.lines.next();
    if (r.done) throw new Error('the numpy peer exited (is python3 with numpy installed?)');
    return JSON.parse(r.value);
  }
  async run(c: MatmulCase): Promise<number[]> {
    this.proc.stdin.write(JSON.stringify({ ...c, min_reps: 3, min_time: 0.1 }) + '\n');
    return ((await this.next()) as { gflops: number[] }).gflops;
  }
  close(): void { this.proc.stdin.end(); }
}

function matmulCases(): MatmulCase[] {
  const cases: MatmulCase[] = [];
  for (const s of [256, 512, 1024, 2048]) cases.push({ name: `matmul ${s}x${s}x${s}`, m: s, n: s, k: s, transA: false, transB: false });
  const rows = 16 * 256, C = 256;
  const layers: [string, number, number][] = [['qkv', C, 3 * C], ['attn-out', C, C], ['mlp-up', C, 4 * C], ['mlp-down', 4 * C, C], ['lm-head', C, 4096]];
  for (const [name, fin, fout] of layers) {
    cases.push({ name: `matmul ref.${name} fwd ${rows}x${fout}x${fin}`, m: rows, n: fout, k: fin, transA: false, transB: false });
    cases.push({ name: `matmul ref.${name} dX ${rows}x${fin}x${fout}`, m: rows, n: fin, k: fout, transA: false, transB: true });
    cases.push({ name: `matmul ref.${name} dW ${fin}x${fout}x${rows}`, m: fin, n: fout, k: rows, transA: true, transB: false });
  }
  return cases;
}

function lumenMatmul(be: Backend, c: MatmulCase, rng: Rng): () => void {
  const a = new CpuBuf(rand(c.m * c.k, rng)), b = new CpuBuf(rand(c.k * c.n, rng)), out = new CpuBuf(new Float32Array(c.m * c.n));
  return () => be.matmul({ a, strideA: 0, b, strideB: 0, out, strideOut: 0, batch: 1, m: c.m, n: c.n, k: c.k, transA: c.transA, transB: c.transB });
}

interface BwCase { name: string; bytes: number; setup: () => () => void }

/** Size of the largest CPU cache in bytes (Linux sysfs), or null when unknown. */
function lastLevelCacheBytes(): number | null {
  const dir = '/sys/devices/system/cpu/cpu0/cache';
  if (!existsSync(dir)) return null;
  let best: number | null = null;
  for (const e of readdirSync(dir)) {
    if (!e.startsWith('index')) continue;
    try {
      const m = /^(\d+)([KMG]?)/.exec(readFileSync(join(dir, e, 'size'), 'utf8').trim());
      if (!m) continue;
      const bytes = Number(m[1]) * ({ '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[m[2]!]!;
      if (best === null || bytes > best) best = bytes;
    } catch { /* unreadable entry */ }
  }
  return best;
}

function bandwidthCases(be: Backend, rng: Rng): BwCase[] {
  // floats per operand: 4x the last-level cache, at least 8M (32 MiB), a multiple of 1M
  const N = Math.max(8, Math.ceil((4 * (lastLevelCacheBytes() ?? 0)) / 4 / (1 << 20))) << 20;
  const M = `${N >> 20}M`;
  const f = (n: number): Buf => new CpuBuf(rand(n, rng));
  const cases: BwCase[] = [];
  cases.push({ name: `elementwise add ${M}`, bytes: 12 * N, setup: () => {
    const a = f(N), b = f(N), o = f(N);
    return () => be.binary('add', a, [1], b, [1], o, [N]);
  } });
  cases.push({ name: `elementwise gelu ${M}`, bytes: 8 * N, setup: () => {
    const x = f(N), o = f(N);
    return () => be.unary('gelu', x, o, N);
  } });
  cases.push({ name: `elementwise gelu backward ${M}`, bytes: 12 * N, setup: () => {
    const x = f(N), dy = f(N), dx = f(N);
    return () => be.unaryBackward('gelu', x, x, dy, dx, N, false);
  } });
  const C = 256, R = N / C;                    // layernorm over the model width
  cases.push({ name: `layernorm ${R}x${C}`, bytes: 8 * R * C + 8 * R, setup: () => {
    const x = f(R * C), w = f(C), b = f(C), o = f(R * C), mean = f(R), rstd = f(R);
    return () => be.layerNorm(x, w, b, o, mean, rstd, R, C, 1e-5);
  } });
  cases.push({ name: `layernorm backward ${R}x${C}`, bytes: 12 * R * C + 8 * R, setup: () => {
    const x = f(R * C), w = f(C), mean = f(R), rstd = f(R), dy = f(R * C), dx = f(R * C), dw = f(C), db = f(C);
    be.layerNorm(x, w, null, dx, mean, rstd, R, C, 1e-5);
    return () => be.layerNormBackward(x, w, mean, rstd, dy, dx, dw, db, R, C);
  } });
  const V = 4096, SR = N / V;                  // softmax / cross-entropy over the vocabulary
  cases.push({ name: `softmax ${SR}x${V}`, bytes: 8 * SR * V, setup: () => {
    const x = f(SR * V), o = f(SR * V);
    return () => be.softmax(x, o, SR, V);
  } });
  cases.push({ name: `cross-entropy ${SR}x${V}`, bytes: 4 * SR * V + 12 * SR, setup: () => {
    const x = f(SR * V), t = new CpuBuf(new Int32Array(SR).map((_, i) => (i * 7919) % V)), l = f(SR), lse = f(SR);
    return () => be.crossEntropy(x, t, l, lse, SR, V, -100, 0);
  } });
  cases.push({ name: `cross-entropy backward ${SR}x${V}`, bytes: 8 * SR * V + 16 * SR, setup: () => {
    const x = f(SR * V), t = new CpuBuf(new Int32Array(SR).map((_, i) => (i * 7919) % V)), l = f(SR), lse = f(SR), dl = f(SR), dx = f(SR * V);
    be.crossEntropy(x, t, l, lse, SR, V, -100, 0);
    return () => be.crossEntropyBackward(x, t, lse, dl, dx, SR, V, -100, 0);
  } });
  return cases;
}

function fmt(x: number | null, digits = 1): string { return x === null ? '-' : x.toFixed(digits); }

async function main(): Promise<number> {
  const be = loadNativeBackend();
  const addon = loadAddon();
  if (!be || !addon) { console.error(`bench:kernels needs the native backend: ${nativeLoadError()}`); return 1; }
  const T = getThreads();
  const rng = new Rng(7);
  console.log(`Lumen ${be.describe()}`);
  let peer: NumpyPeer | null = new NumpyPeer(T);
  let peerName = `numpy (${T} thread${T === 1 ? '' : 's'})`;
  try {
    const info = await peer.info;
    peerName = `numpy ${info.numpy ?? '?'} (${info.blas ?? 'BLAS'}, ${info.blas_threads ?? T} thread${T === 1 ? '' : 's'})`;
  } catch (e) {
    console.error(`numpy peer unavailable: ${e instanceof Error ? e.message : String(e)}`);
    peer = null;
  }
  console.log(`peer: ${peerName}; memcpy peer: the addon's parallel memcpy, ${T} threads`);
  const rows: Row[] = [];
  const line = (r: Row) => console.log(
    `${r.case.padEnd(40)} ${fmt(r.lumen).padStart(8)} ${r.unit.padEnd(8)} ${fmt(r.peer_value).padStart(8)}  x${fmt(r.ratio, 2).padEnd(5)}` +
    `  best ${fmt(r.lumen_best).padStart(6)} / ${fmt(r.peer_best).padStart(6)} x${fmt(r.ratio_best, 2).padEnd(5)}` +
    `  spread ${(100 * r.lumen_spread).toFixed(0)}% / ${r.peer_spread === null ? '-' : (100 * r.peer_spread).toFixed(0) + '%'}`);
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (${availableParallelism()} cores)`);
  console.log(`${'case'.padEnd(40)} ${'lumen'.padStart(8)} ${'unit'.padEnd(8)} ${'peer'.padStart(8)}  ratio   (medians)  best lumen / peer, ratio  spread lumen / peer`);

  for (const c of matmulCases()) {
    const run = lumenMatmul(be, c, rng);
    const flops = 2 * c.m * c.n * c.k;
    const ours: number[] = [], theirs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      ours.push(...timeIt(run).map((t) => flops / t / 1e9));
      if (peer) {
        theirs.push(...(await peer.run(c)));
        // OpenBLAS's idle threads busy-wait for a while after a call; let them go to sleep
        // so they do not take a core from the next Lumen measurement.
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    const lumen = median(ours), pv = theirs.length ? median(theirs) : null;
    const lb = Math.max(...ours), pb = theirs.length ? Math.max(...theirs) : null;
    const row: Row = { case: c.name, unit: 'GFLOP/s', lumen, peer: peerName, peer_value: pv, ratio: pv ? lumen / pv : null,
      lumen_spread: spreadOf(ours), peer_spread: theirs.length ? spreadOf(theirs) : null,
      lumen_best: lb, peer_best: pb, ratio_best: pb ? lb / pb : null };
    rows.push(row); line(row);
  }
  peer?.close();

  for (const c of bandwidthCases(be, rng)) {
    const run = c.setup();
    const copyFloats = Math.round(c.bytes / 8);          // a copy of S bytes reads S and writes S
    const src = new Float32Array(copyFloats), dst = new Float32Array(copyFloats);
    src.fill(1);
    const copy = () => addon.copy(src, dst, copyFloats);
    const ours: number[] = [], theirs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      ours.push(...timeIt(run, 5).map((t) => c.bytes / t / 1e9));
      theirs.push(...timeIt(copy, 5).map((t) => c.bytes / t / 1e9));
    }
    const lumen = median(ours), pv = median(theirs), lb = Math.max(...ours), pb = Math.max(...theirs);
    const row: Row = { case: c.name, unit: 'GB/s', lumen, peer: `memcpy (C, ${T} threads, same bytes)`, peer_value: pv, ratio: lumen / pv,
      lumen_spread: spreadOf(ours), peer_spread: spreadOf(theirs), lumen_best: lb, peer_best: pb, ratio_best: lb / pb };
    rows.push(row); line(row);
  }

  const out = join(root, 'bench', 'results', 'kernels.json');
  writeJsonAtomic(out, { bench: 'kernels', backend: be.describe(), threads: T, peer: peerName, date: new Date().toISOString(),
    load_average: loadavg(), rows });
  console.log(`wrote ${out}`);
  return 0;
}

main().then((code) => process.exit(code), (e) => { console.error(e); process.exit(1); });
