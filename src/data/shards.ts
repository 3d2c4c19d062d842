/**
 * Token shards: text files → binary token files (uint16 when the vocabulary fits, else uint32)
 * with a held-out validation split and a manifest; and a streaming loader of random windows,
 * deterministic by seed, that reads only the windows it needs (never the whole corpus).
 *
 * Layout of DIR:
 *   manifest.json            { format, dtype, vocabSize, eot, train: {shards, tokens, documents}, val: {...}, sources }
 *   train-00000.bin, ...     little-endian token ids, documents separated by <|endoftext|>
 *   val-00000.bin
 */
import { openSync, readSync, closeSync, readFileSync, existsSync, statSync } from 'node:fs';
import { join, basename, dirname, relative, resolve, sep } from 'node:path';
import { createHash } from 'node:crypto';
import { Rng } from '../tensor/rng.ts';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.ts';
import { InputError } from '../util/errors.ts';
import { Progress } from '../util/progress.ts';

export interface TextEncoder {
  encode(text: string): number[];
  readonly vocabSize: number;
  specialTokenId(name: string): number;
}

export interface SplitInfo { shards: { file: string; tokens: number }[]; tokens: number; documents: number }

export interface Manifest {
  format: 'lumen-shards-v1';
  dtype: 'uint16' | 'uint32';
  vocabSize: number;
  eot: number;
  train: SplitInfo;
  val: SplitInfo;
  sources: { path: string; bytes: number; sha256: string; split: 'train' | 'val' }[];
}

export interface PrepareOptions {
  files: string[];
  tokenizer: TextEncoder;
  outDir: string;
  /** Percentage of documents (by hash of their path) held out for validation. */
  valPercent?: number;
  /** Tokens per shard file. */
  shardTokens?: number;
  /** Which split each file goes to (default: by a hash of its path, valPercent of them to 'val'). */
  splitOf?: (path: string) => 'train' | 'val';
  quiet?: boolean;
}

/** The deepest directory containing every file (splits then do not depend on where a corpus is copied). */
function commonDir(files: string[]): string {
  let parts = dirname(resolve(files[0]!)).split(sep);
  for (const f of files) {
    const q = dirname(resolve(f)).split(sep);
    let i = 0;
    while (i < parts.length && i < q.length && parts[i] === q[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join(sep) || sep;
}

/** Which split a document goes to: stable under reordering, by a hash of its path relative to the corpus root. */
export function splitOf(path: string, valPercent: number): 'train' | 'val' {
  const h = createHash('sha256').update(path).digest();
  return h.readUInt32LE(0) % 10000 < valPercent * 100 ? 'val' : 'train';
}

class ShardWriter {
  private buf: Uint16Array | Uint32Array;
  private n = 0;
  readonly info: SplitInfo = { shards: [], tokens: 0, documents: 0 };
  constructor(private readonly dir: string, private readonly prefix: string, private readonly dtype: 'uint16' | 'uint32', private readonly cap: number) {
    this.buf = dtype === 'uint16' ? new Uint16Array(cap) : new Uint32Array(cap);
  }
  push(ids: number[], eot: number): void {
    this.info.documents++;
    for (const id of ids) this.put(id);
    this.put(eot);
  }
  private put(id: number): void {
    this.buf[this.n++] = id;
    this.info.tokens++;
    if (this.n === this.cap) this.flush();
  }
  flush(): void {
    if (this.n === 0) return;
    const file = `${this.prefix}-${String(this.info.shards.length).padStart(5, '0')}.bin`;
    const view = this.buf.subarray(0, this.n);
    writeFileAtomic(join(this.dir, file), new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    this.info.shards.push({ file, tokens: this.n });
    this.n = 0;
  }
}

/** Tokenizes files into shards + manifest (written last, atomically: a directory without one is incomplete). */
export function prepareShards(o: PrepareOptions): Manifest {
  if (o.files.length === 0) throw new InputError('data prepare: no input files');
  const dtype = o.tokenizer.vocabSize <= 65536 ? 'uint16' : 'uint32';
  const cap = o.shardTokens ?? 16 * 1024 * 1024;
  const eot = o.tokenizer.specialTokenId('<|endoftext|>');
  const valPercent = o.valPercent ?? 2;
  const train = new ShardWriter(o.outDir, 'train', dtype, cap), val = new ShardWriter(o.outDir, 'val', dtype, cap);
  const sources: Manifest['sources'] = [];
  const totalBytes = o.files.reduce((s, f) => s + statSync(f).size, 0);
  const bar = new Progress({ label: 'tokenize', total: totalBytes, unit: 'B', quiet: o.quiet });
  let done = 0;
  const root = commonDir(o.files);
  for (const f of o.files) {
    let bytes: Buffer;
    try { bytes = readFileSync(f); } catch (e) { throw new InputError(`data prepare: cannot read '${f}': ${(e as Error).message}`); }
    const split = o.splitOf ? o.splitOf(f) : splitOf(relative(root, f), valPercent);
    const ids = o.tokenizer.encode(bytes.toString('utf8'));
    (split === 'val' ? val : train).push(ids, eot);
    sources.push({ path: f, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), split });
    done += bytes.length;
    bar.update(done, { tokens: train.info.tokens + val.info.tokens });
  }
  train.flush(); val.flush();
  bar.done();
  if (train.info.tokens === 0) throw new InputError('data prepare: the inputs produced no training tokens');
  const manifest: Manifest = { format: 'lumen-shards-v1', dtype, vocabSize: o.tokenizer.vocabSize, eot, train: train.info, val: val.info, sources };
  writeJsonAtomic(join(o.outDir, 'manifest.json'), manifest);
  return manifest;
}

export function readManifest(dir: string): Manifest {
  const p = join(dir, 'manifest.json');
  if (!existsSync(p)) throw new InputError(`${dir} holds no token shards (no manifest.json; run 'lumen data prepare')`);
  let m: Manifest;
  try { m = JSON.parse(readFileSync(p, 'utf8')) as Manifest; } catch (e) { throw new InputError(`${p}: not valid JSON (${(e as Error).message})`); }
  if (m.format !== 'lumen-shards-v1' || (m.dtype !== 'uint16' && m.dtype !== 'uint32') || !m.train?.shards) {
    throw new InputError(`${p}: not a lumen-shards-v1 manifest`);
  }
  const width = m.dtype === 'uint16' ? 2 : 4;
  for (const s of [...m.train.shards, ...m.val.shards]) {
    const f = join(dir, basename(s.file));
    if (!existsSync(f)) throw new InputError(`${p}: shard ${s.file} is missing`);
    if (statSync(f).size !== s.tokens * width) throw new InputError(`${f}: expected ${s.tokens * width} bytes for ${s.tokens} tokens, found ${statSync(f).size}`);
  }
  return m;
}

/** A batch of next-token windows: ids and targets, both (batch, seqLen) int32. */
export interface Batch { ids: Int32Array; targets: Int32Array; batch: number; seqLen: number }

/** Random windows from one split, read on demand from the shard files. */
export class TokenWindows {
  readonly manifest: Manifest;
  private readonly fds: number[];
  private readonly shards: { file: string; tokens: number }[];
  private readonly cum: number[] = [];
  private readonly width: number;
  readonly rng: Rng;

  constructor(readonly dir: string, readonly split: 'train' | 'val', readonly seqLen: number, seed: number) {
    this.manifest = readManifest(dir);
    this.width = this.manifest.dtype === 'uint16' ? 2 : 4;
    this.shards = this.manifest[split].shards.filter((s) => s.tokens > seqLen + 1);
    if (this.shards.length === 0) throw new InputError(`${dir}: the ${split} split has no shard longer than ${seqLen + 1} tokens`);
    let c = 0;
    for (const s of this.shards) { c += s.tokens - seqLen - 1; this.cum.push(c); }
    this.fds = this.shards.map((s) => openSync(join(dir, basename(s.file)), 'r'));
    this.rng = new Rng(seed);
  }

  /** Total number of distinct window start positions. */
  get positions(): number { return this.cum[this.cum.length - 1]!; }

  private readWindow(shard: number, start: number, ids: Int32Array, targets: Int32Array, row: number): void {
    const n = this.seqLen + 1;
    const bytes = Buffer.alloc(n * this.width);
    readSync(this.fds[shard]!, bytes, 0, bytes.length, start * this.width);
    const T = this.seqLen;
    for (let i = 0; i < n; i++) {
      const tok = this.width === 2 ? bytes.readUInt16LE(2 * i) : bytes.readUInt32LE(4 * i);
      if (i < T) ids[row * T + i] = tok;
      if (i > 0) targets[row * T + i - 1] = tok;
    }
  }

  /** `batch` windows at uniformly random positions (consumes the generator). */
  next(batch: number): Batch {
    const T = this.seqLen;
    const ids = new Int32Array(batch * T), targets = new Int32Array(batch * T);
    for (let b = 0; b < batch; b++) {
      const pos = Math.floor(this.rng.uniform() * this.positions);
      let s = 0;
      while (this.cum[s]! <= pos) s++;
      const start = pos - (s === 0 ? 0 : this.cum[s - 1]!);
      this.readWindow(s, start, ids, targets, b);
    }
    return { ids, targets, batch, seqLen: T };
  }

  /** Fixed, evenly spaced windows (the same every call): for comparable validation losses. */
  fixed(count: number): Batch {
    const T = this.seqLen;
    const ids = new Int32Array(count * T), targets = new Int32Array(count * T);
    for (let b = 0; b < count; b++) {
      const pos = Math.floor(((b + 0.5) / count) * this.positions);
      let s = 0;
      while (this.cum[s]! <= pos) s++;
      this.readWindow(s, pos - (s === 0 ? 0 : this.cum[s - 1]!), ids, targets, b);
    }
    return { ids, targets, batch: count, seqLen: T };
  }

  close(): void {
    for (const fd of this.fds) closeSync(fd);
    this.fds.length = 0;
  }
}
