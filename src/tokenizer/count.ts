/**
 * Streaming word counts for BPE training: reads files, globs or streams chunk by chunk,
 * pre-tokenises each chunk and counts the words, so memory holds the word table and one chunk,
 * never the corpus.
 *
 * Chunks are cut only between a line feed and a following letter (`\n` then `\p{L}`). No word of
 * the cl100k, o200k or GPT-2 patterns spans such a point and no word before it depends on what
 * follows it (every alternative that can end at a line feed ends there whatever letter comes
 * next), so the counts equal those of the whole text. Text without such a point for more than
 * 8 MB is cut at the last line feed instead (documented approximation for pathological input).
 * Large corpora are counted by worker threads, one share of the files each (count-worker.ts).
 */
import { createReadStream, statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { expandInputs } from '../io/files.ts';
import { InputError } from '../util/errors.ts';
import { CL100K_PATTERN, PreTokenizer } from './pretokenize.ts';
import { Cl100kScanner } from './cl100k-scanner.ts';
import { WordCounts, type WordCountsSnapshot } from './word-table.ts';

/** A training input: a file path, a glob, or a stream / async iterable of text or bytes. */
export type TrainInput = string | NodeJS.ReadableStream | AsyncIterable<string | Uint8Array>;

const HARD_CARRY = 8 << 20;

/** Word -> count table filled chunk by chunk. */
export class WordCounter {
  private readonly table = new WordCounts();
  /** Text bytes seen (UTF-8). */
  bytes = 0;
  private readonly pre: PreTokenizer;

  private readonly scanner: Cl100kScanner | null;

  constructor(pattern: string) {
    this.pre = new PreTokenizer(pattern);
    this.scanner = pattern === CL100K_PATTERN ? new Cl100kScanner() : null;
  }

  /** Counts the words of a complete text (no carry-over). Words are hashed in place, not sliced out. */
  addText(text: string): void {
    const re = this.pre.regex;
    const scanner = this.scanner;
    const table = this.table;
    const n = text.length;
    let pos = 0;
    re.lastIndex = 0;
    while (pos < n) {
      let end: number;
      if (scanner !== null) end = scanner.next(text, pos);
      else {
        if (!re.test(text)) this.pre.split(text.slice(pos)); // throws the descriptive error
        end = re.lastIndex;
      }
      table.add(text, pos, end);
      pos = end;
    }
  }

  /** The table as transferable typed arrays. */
  snapshot(): WordCountsSnapshot {
    return this.table.snapshot();
  }

  /** Adds the counts of another counter's snapshot. */
  addSnapshot(t: WordCountsSnapshot, bytes: number): void {
    this.table.addSnapshot(t);
    this.bytes += bytes;
  }

  /** Number of distinct words so far. */
  get size(): number {
    return this.table.size;
  }

  /** The words and their counts (a new Map; first-seen order). */
  get counts(): Map<string, number> {
    return new Map(this.table.entries());
  }

  /**
   * Counts one input read as a stream of text chunks; `name` labels errors; `onBytes` reports
   * progress in bytes.
   */
  async addStream(chunks: AsyncIterable<string | Uint8Array>, name: string, onBytes?: (n: number) => void): Promise<void> {
    const dec = new TextDecoder('utf-8', { ignoreBOM: true });
    let carry = '';
    try {
      for await (const chunk of chunks) {
        const n = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
        this.bytes += n;
        onBytes?.(n);
        carry += typeof chunk === 'string' ? chunk : dec.decode(chunk, { stream: true });
        const cut = safeCut(carry);
        if (cut > 0) {
          this.addText(carry.slice(0, cut));
          carry = carry.slice(cut);
        }
      }
    } catch (e) {
      if (e instanceof InputError) throw e;
      throw new InputError(`input ${name}: read failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    carry += dec.decode();
    if (carry.length > 0) this.addText(carry);
  }

  /** Counts a file, streamed in 1 MiB chunks. */
  async addFile(path: string, onBytes?: (n: number) => void): Promise<void> {
    await this.addStream(createReadStream(path, { highWaterMark: 1 << 20 }), path, onBytes);
  }
}

/** Last index i (> 0) with text[i-1] = '\n' and text[i] a letter; 0 if none (see the file comment). */
function safeCut(text: string): number {
  const letter = /\p{L}/u;
  for (let i = text.lastIndexOf('\n'); i >= 0; i = text.lastIndexOf('\n', i - 1)) {
    if (i + 1 < text.length) {
      const cp = text.codePointAt(i + 1)!;
      if (letter.test(String.fromCodePoint(cp))) return i + 1;
    }
    if (text.length - i > HARD_CARRY) break;
    if (i === 0) break;
  }
  if (text.length > HARD_CARRY) {
    const nl = text.lastIndexOf('\n');
    if (nl > 0) return nl + 1;
  }
  return 0;
}

/** Corpora at least this large (bytes of files) are counted by worker threads. */
const PARALLEL_MIN_BYTES = 16 << 20;

/**
 * Counts all inputs; files and globs are expanded first. With `threads` > 1 and at least 16 MB of
 * files, the files are split by size between that many worker threads whose tables are then added
 * up (counts are sums, so the result does not depend on the split). Streams are read here.
 */
export async function countWords(inputs: readonly TrainInput[], pattern: string,
  opts: { onBytes?: (n: number) => void; threads?: number; parallelMinBytes?: number } = {}): Promise<WordCounter> {
  const { onBytes, threads = 1, parallelMinBytes = PARALLEL_MIN_BYTES } = opts;
  const counter = new WordCounter(pattern);
  const globs = inputs.filter((x): x is string => typeof x === 'string');
  const files = globs.length > 0 ? expandInputs(globs) : [];
  const sizes = files.map((f) => { try { return statSync(f).size; } catch { return 0; } });
  const total = sizes.reduce((a, b) => a + b, 0);
  if (threads > 1 && files.length > 1 && total >= parallelMinBytes) {
    // Largest first onto the least loaded group.
    const groups: string[][] = Array.from({ length: Math.min(threads, files.length) }, () => []);
    const load = groups.map(() => 0);
    files.map((f, i) => [f, sizes[i]!] as const).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).forEach(([f, sz]) => {
      const g = load.indexOf(Math.min(...load));
      groups[g]!.push(f); load[g] += sz;
    });
    const results = await Promise.all(groups.map((g) => countInWorker(g, pattern, onBytes)));
    for (const r of results) counter.addSnapshot(r.table, r.bytes);
  } else {
    for (const f of files) await counter.addFile(f, onBytes);
  }
  let k = 0;
  for (const x of inputs) if (typeof x !== 'string') await counter.addStream(x as AsyncIterable<string | Uint8Array>, `stream #${k++}`, onBytes);
  return counter;
}

/**
 * Counts `files` in a worker thread. The worker registers tsx's loader itself (as bin/lumen.mjs
 * does) and then imports count-worker.ts, so it runs however this process loaded TypeScript.
 */
function countInWorker(files: string[], pattern: string, onBytes?: (n: number) => void): Promise<{ table: WordCountsSnapshot; bytes: number }> {
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
    `.then((m) => { m.register(); return import(${JSON.stringify(new URL('./count-worker.ts', import.meta.url).href)}); })`;
  return new Promise((resolveP, reject) => {
    const w = new Worker(boot, { eval: true, workerData: { files, pattern }, execArgv: [] });
    let bytes = 0;
    let settled = false;
    w.on('message', (m: { bytes?: number; table?: WordCountsSnapshot; error?: string }) => {
      if (m.bytes !== undefined) { bytes += m.bytes; onBytes?.(m.bytes); }
      else if (m.table) { settled = true; resolveP({ table: m.table, bytes }); void w.terminate(); }
      else if (m.error !== undefined) { settled = true; reject(new InputError(m.error)); void w.terminate(); }
    });
    w.on('error', (e) => { if (!settled) { settled = true; reject(e); } });
    w.on('exit', (code) => { if (!settled) { settled = true; reject(new Error(`word-count worker exited with code ${code} before finishing`)); } });
  });
}

/** Total size in bytes of the file inputs (for a progress bar). */
export function inputBytes(files: readonly string[]): number {
  let n = 0;
  for (const f of files) { try { n += statSync(f).size; } catch { /* reported when read */ } }
  return n;
}
