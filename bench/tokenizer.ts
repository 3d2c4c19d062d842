/**
 * Tokenizer benchmark (`npm run bench:tokenizer`).
 *
 * 1. Encode throughput with cl100k_base, single thread, on >= 5 MB of mixed text (JS/TS/MD
 *    sources from node_modules interleaved with generated multilingual prose), Lumen vs the
 *    WASM `tiktoken` package and `js-tiktoken`, same process, warm-up then the median of several
 *    repetitions, a full GC before each timed run (js-tiktoken is timed first, apart, because of
 *    the garbage it leaves). Lumen's word cache is cleared before every repetition, so each one encodes the
 *    text from cold (a warm-cache figure is printed as well, for information). Any id mismatch
 *    fails the benchmark.
 * 2. Training a 32,000-token vocabulary on >= 100 MB: the corpus is assembled in a temp dir from
 *    the JS/TS/MD files under node_modules; when they hold less than 100 MB they are repeated with
 *    a variation (ASCII letters rot13-shifted on odd passes, so the repeats add new words rather
 *    than duplicate counts). Each repetition runs in a child process that reports its wall time
 *    and peak RSS; the counting phase uses 2 worker threads (trainBpe's default on 2+ cores), the
 *    merge phase one thread. Ratio = 120 s / seconds (the goal).
 *
 * Writes bench/results/tokenizer.json. Options: --quick (1 MB / 10 MB, for a smoke run).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { getEncoding } from 'js-tiktoken';
import { get_encoding } from 'tiktoken';
import { Tokenizer, trainBpe } from '../src/tokenizer/index.ts';
import { writeJsonAtomic } from '../src/util/fs.ts';
import { listFiles, mixedText } from '../test/tokenizer/mixed-text.ts';

interface Row { case: string; unit: string; lumen: number; peer: string; peer_value: number; ratio: number; [k: string]: unknown }

setFlagsFromString('--expose-gc');
/** A full garbage collection (exposed at runtime; the script runs under plain tsx). */
const gc = runInNewContext('gc') as () => void;

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(2)}..${Math.max(...xs).toFixed(2)}`;

/** CPU seconds of the last `time` call (user + system of this process; one thread runs). */
let lastCpu = 0;

/** Wall seconds of fn(); also records its CPU seconds in lastCpu. */
function time(fn: () => void): number {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  lastCpu = (c.user + c.system) / 1e6;
  return wall;
}

/** Writes the training corpus (>= `bytes`) into `dir` as ~10 MB parts; returns a description. */
function buildCorpus(dir: string, bytes: number): string {
  const files = listFiles('node_modules', ['.js', '.ts', '.md', '.mjs', '.cjs']).filter((f) => !f.includes('/ranks/'));
  const rot13 = (s: string): string => s.replace(/[a-zA-Z]/g, (c) => { const b = c <= 'Z' ? 65 : 97; return String.fromCharCode(((c.charCodeAt(0) - b + 13) % 26) + b); });
  let total = 0, pass = 0, n = 0, partBytes = 0;
  let part: string[] = [];
  const flush = (): void => { writeFileSync(join(dir, `part${String(n++).padStart(3, '0')}.txt`), part.join('\n')); part = []; partBytes = 0; };
  while (total < bytes) {
    for (const f of files) {
      let t = readFileSync(f, 'utf8');
      if (pass % 2 === 1) t = rot13(t);
      const b = Buffer.byteLength(t);
      part.push(t); partBytes += b; total += b;
      if (partBytes >= 10e6) flush();
      if (total >= bytes) break;
    }
    pass++;
    if (files.length === 0) throw new Error('no source files under node_modules to build the corpus from');
  }
  if (part.length) flush();
  return `${(total / 1e6).toFixed(1)} MB in ${n} files from ${files.length} JS/TS/MD files under node_modules, ${pass} pass(es)${pass > 1 ? ', odd passes rot13-shifted' : ''}`;
}

/** Child mode: train once and print {seconds, maxRssMB, ...} as JSON. */
async function trainChild(dir: string, vocab: number): Promise<void> {
  const t0 = performance.now();
  const tok = await trainBpe({ inputs: [join(dir, '*.txt')], vocabSize: vocab, progress: false });
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ seconds, maxRssMB: process.resourceUsage().maxRSS / 1024, vocab: tok.vocabSize, ...tok.trainStats }));
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--train-child') return trainChild(argv[1]!, Number(argv[2]));
  const quick = argv.includes('--quick');
  const rows: Row[] = [];

  // ---- encode ----
  const text = mixedText(quick ? 1_000_000 : 6_000_000, 1, true);
  const mb = Buffer.byteLength(text) / 1e6;
  console.log(`encode: ${mb.toFixed(2)} MB of mixed text (node_modules sources + generated multilingual prose), cl100k_base, 1 thread`);
  const lumen = Tokenizer.fromTiktoken('cl100k_base');
  const js = getEncoding('cl100k_base');
  const wasm = get_encoding('cl100k_base');
  const reps = quick ? 3 : 5;
  const ref = lumen.encode(text);
  const check = (name: string, ids: ArrayLike<number>): void => {
    if (ids.length !== ref.length) throw new Error(`id mismatch: ${name} gave ${ids.length} tokens, Lumen ${ref.length}`);
    for (let i = 0; i < ids.length; i++) if (ids[i] !== ref[i]) throw new Error(`id mismatch with ${name} at token ${i}: ${ids[i]} vs Lumen ${ref[i]}`);
  };
  // Warm-up: two more cold-cache runs for Lumen (its JIT settles over ~2 runs), one for each peer.
  for (let r = 0; r < 2; r++) { lumen.clearCache(); lumen.encode(text); }
  check('tiktoken-wasm', wasm.encode(text, [], []));
  check('js-tiktoken', js.encode(text, [], []));
  const tLumen: number[] = [], tLumenWarm: number[] = [], tWasm: number[] = [], tJs: number[] = [];
  const cLumen: number[] = [], cWasm: number[] = [], cJs: number[] = []; // MB per CPU second
  // js-tiktoken first and apart: it leaves much garbage, which would otherwise be collected
  // during the next timed run of whoever follows it. A full GC precedes every timed run.
  for (let r = 0; r < (quick ? 2 : 3); r++) {
    let j: number[] = [];
    gc();
    tJs.push(mb / time(() => { j = js.encode(text, [], []); }));
    cJs.push(mb / lastCpu);
    check('js-tiktoken', j);
  }
  for (let r = 0; r < reps; r++) {
    lumen.clearCache();
    let ids: number[] = [];
    gc();
    tLumen.push(mb / time(() => { ids = lumen.encode(text); }));
    cLumen.push(mb / lastCpu);
    check('lumen (repeat)', ids);
    gc();
    tLumenWarm.push(mb / time(() => { ids = lumen.encode(text); }));
    let w: Uint32Array = new Uint32Array();
    gc();
    tWasm.push(mb / time(() => { w = wasm.encode(text, [], []); }));
    cWasm.push(mb / lastCpu);
    check('tiktoken-wasm', w);
  }
  wasm.free();
  const l = median(tLumen);
  rows.push({ case: 'encode cl100k vs tiktoken-wasm', unit: 'MB/s', lumen: l, peer: 'tiktoken (WASM)', peer_value: median(tWasm), ratio: l / median(tWasm), mb, spread_lumen: spread(tLumen), spread_peer: spread(tWasm),
    cpu_mb_s_lumen: median(cLumen), cpu_mb_s_peer: median(cWasm), cpu_ratio: median(cLumen) / median(cWasm) });
  rows.push({ case: 'encode cl100k vs js-tiktoken', unit: 'MB/s', lumen: l, peer: 'js-tiktoken', peer_value: median(tJs), ratio: l / median(tJs), mb, spread_lumen: spread(tLumen), spread_peer: spread(tJs),
    cpu_mb_s_lumen: median(cLumen), cpu_mb_s_peer: median(cJs), cpu_ratio: median(cLumen) / median(cJs) });
  console.log(`  wall MB/s medians (spread): lumen ${l.toFixed(2)} (${spread(tLumen)}), tiktoken-wasm ${median(tWasm).toFixed(2)} (${spread(tWasm)}), js-tiktoken ${median(tJs).toFixed(2)} (${spread(tJs)})`);
  console.log(`  MB per CPU-second medians: lumen ${median(cLumen).toFixed(2)}, tiktoken-wasm ${median(cWasm).toFixed(2)}, js-tiktoken ${median(cJs).toFixed(2)} (less sensitive to other load on the machine)`);
  console.log(`  (Lumen with a warm word cache, same text again: ${median(tLumenWarm).toFixed(2)} MB/s, spread ${spread(tLumenWarm)})`);

  // ---- train ----
  const dir = mkdtempSync(join(tmpdir(), 'lumen-bench-tok-'));
  try {
    const desc = buildCorpus(dir, quick ? 10e6 : 100e6);
    console.log(`train: corpus ${desc}; counting on ${Math.min(2, availableParallelism())} worker threads, merges on 1`);
    const vocab = quick ? 8000 : 32000;
    const runs: Array<{ seconds: number; maxRssMB: number; uniqueWords: number; countSeconds: number; mergeSeconds: number }> = [];
    for (let r = 0; r < (quick ? 1 : 3); r++) {
      const c = spawnSync(process.execPath, ['--import', 'tsx', 'bench/tokenizer.ts', '--train-child', dir, String(vocab)], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (c.status !== 0) throw new Error(`training child failed: ${c.stderr}`);
      runs.push(JSON.parse(c.stdout.trim().split('\n').pop()!));
    }
    const secs = runs.map((r) => r.seconds);
    const s = median(secs);
    const rss = Math.max(...runs.map((r) => r.maxRssMB));
    rows.push({
      case: quick ? 'train 8k on 10MB (quick)' : 'train 32k on 100MB', unit: 'seconds', lumen: s, peer: 'goal 120 s', peer_value: 120, ratio: 120 / s,
      peak_rss_mb: Math.round(rss), spread: spread(secs), corpus: desc, unique_words: runs[0]!.uniqueWords,
      count_seconds: median(runs.map((r) => r.countSeconds)), merge_seconds: median(runs.map((r) => r.mergeSeconds)),
    });
    console.log(`  peak RSS ${rss.toFixed(0)} MB; counting ${median(runs.map((r) => r.countSeconds)).toFixed(1)} s, merges ${median(runs.map((r) => r.mergeSeconds)).toFixed(1)} s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  console.log('\n' + ['case'.padEnd(34), 'unit'.padEnd(8), 'lumen'.padStart(9), 'peer'.padEnd(18), 'peer value'.padStart(10), 'ratio'.padStart(7)].join(' '));
  for (const r of rows) {
    console.log([r.case.padEnd(34), r.unit.padEnd(8), r.lumen.toFixed(2).padStart(9), r.peer.padEnd(18), r.peer_value.toFixed(2).padStart(10), r.ratio.toFixed(2).padStart(7)].join(' '));
  }
  console.log('(ratio: higher is better for Lumen; encode = lumen/peer MB/s, train = 120 s / lumen s)');
  if (!quick) writeJsonAtomic('bench/results/tokenizer.json', { bench: 'tokenizer', rows });
}

main().catch((e) => { console.error(e); process.exit(1); });
