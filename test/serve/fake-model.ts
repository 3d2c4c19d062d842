/**
 * A deterministic fake `InferenceModel` for engine and server tests.
 *
 * Vocabulary: byte tokens (newline, printable ASCII, and the two UTF-8 bytes of 'é' as separate
 * tokens, to exercise partial characters), a few multi-byte word tokens (so stop strings can span
 * token boundaries), then the special tokens of src/tokenizer/special.ts.
 * Logits: each sequence keeps a rolling hash of its whole history (tokens, and for an image a
 * hash of its quantised pixels per image position); logit[v] = hash(history, v) mapped to [-4, 4).
 * So the next-token distribution depends on every earlier input, and a mix-up between sequences
 * in a batch changes the output.
 */
import { fmix32, hashAt } from '../../src/tensor/rng.ts';
import { SPECIAL_TOKENS } from '../../src/tokenizer/special.ts';
import type { ImageInput, InferenceModel, SequenceState, StepItem, TextCodec, VisionInfo } from '../../src/serve/model.ts';

const WORDS = ['the', ' the', 'cat', ' cat', 'ing', 'Hello', ' world', 'END', 'STOP', '\n\n'];

/** Byte-level codec with greedy longest-match encoding. */
export class FakeCodec implements TextCodec {
  readonly pieces: Uint8Array[] = [];
  private readonly special = new Map<string, number>();
  private readonly byPiece = new Map<string, number>();
  private readonly maxLen: number;

  constructor() {
    const add = (b: Uint8Array) => { this.byPiece.set(Buffer.from(b).toString('latin1'), this.pieces.length); this.pieces.push(b); };
    add(Uint8Array.of(10));
    for (let c = 32; c <= 126; c++) add(Uint8Array.of(c));
    add(Uint8Array.of(0xc3)); add(Uint8Array.of(0xa9));
    for (const w of WORDS) add(new Uint8Array(Buffer.from(w, 'utf8')));
    this.maxLen = Math.max(...this.pieces.map((p) => p.length));
    for (const s of SPECIAL_TOKENS) { this.special.set(s, this.pieces.length); this.pieces.push(new Uint8Array(Buffer.from(s, 'utf8'))); }
  }

  get vocabSize(): number { return this.pieces.length; }

  specialTokenId(name: string): number {
    const id = this.special.get(name);
    if (id === undefined) throw new Error(`no special token ${name}`);
    return id;
  }

  tokenBytes(id: number): Uint8Array { return this.pieces[id]!; }

  encode(text: string, opts: { allowedSpecial?: 'all' | Set<string> } = {}): number[] {
    const allowed = opts.allowedSpecial === 'all' ? [...this.special.keys()] : [...(opts.allowedSpecial ?? [])];
    const out: number[] = [];
    let rest = text;
    while (rest.length) {
      let at = -1, which = '';
      for (const s of allowed) { const i = rest.indexOf(s); if (i >= 0 && (at < 0 || i < at)) { at = i; which = s; } }
      const plain = at < 0 ? rest : rest.slice(0, at);
      this.encodePlain(plain, out);
      if (at < 0) break;
      out.push(this.special.get(which)!);
      rest = rest.slice(at + which.length);
    }
    return out;
  }

  private encodePlain(text: string, out: number[]): void {
    const bytes = Buffer.from(text, 'utf8').toString('latin1');
    let i = 0;
    while (i < bytes.length) {
      let id = -1, len = 0;
      for (let l = Math.min(this.maxLen, bytes.length - i); l > 0; l--) {
        const got = this.byPiece.get(bytes.slice(i, i + l));
        if (got !== undefined) { id = got; len = l; break; }
      }
      if (id < 0) { id = this.byPiece.get('?')!; len = 1; }
      out.push(id); i += len;
    }
  }

  decode(ids: number[]): string {
    return Buffer.concat(ids.map((i) => this.pieces[i] ?? new Uint8Array())).toString('utf8');
  }
}

class FakeSeq implements SequenceState {
  length = 0;
  hash = 0x12345678;
  released = false;
}

export interface FakeModelOptions {
  name?: string;
  contextLength?: number;
  /** null for a text-only model. */
  vision?: null | VisionInfo;
  /** Blocks the thread this long per step, like a real forward pass (0 = none). */
  stepDelayMs?: number;
  /** Lowers the logits of <|end|> and <|endoftext|> so that answers run to max_tokens. */
  noEnd?: boolean;
}

/** The fake model; also counts what it was asked to do, for assertions. */
export class FakeModel implements InferenceModel {
  readonly name: string;
  readonly contextLength: number;
  readonly tokenizer = new FakeCodec();
  readonly vision: null | VisionInfo;
  private readonly delay: number;
  private readonly imageId: number;
  private readonly ends: number[];
  /** Sequences alive (created, not released). */
  live = 0;
  /** Largest number of items seen in one step. */
  maxBatch = 0;
  steps = 0;

  constructor(opts: FakeModelOptions = {}) {
    this.name = opts.name ?? 'fake-gpt';
    this.contextLength = opts.contextLength ?? 512;
    this.vision = opts.vision === undefined ? { imageTokens: 4, imageSize: 8 } : opts.vision;
    this.delay = opts.stepDelayMs ?? 0;
    this.imageId = this.tokenizer.specialTokenId('<|image|>');
    this.ends = opts.noEnd ? [this.tokenizer.specialTokenId('<|end|>'), this.tokenizer.specialTokenId('<|endoftext|>')] : [];
  }

  get vocabSize(): number { return this.tokenizer.vocabSize; }

  newSequence(): SequenceState { this.live++; return new FakeSeq(); }

  release(seq: SequenceState): void {
    const s = seq as FakeSeq;
    if (s.released) throw new Error('sequence released twice');
    s.released = true;
    this.live--;
  }

  /** Logits row for a history hash: hash(h, v) mapped to [-4, 4). */
  logitsFor(h: number, out: Float32Array, offset = 0): void {
    for (let v = 0; v < this.vocabSize; v++) out[offset + v] = (hashAt(h, v) / 4294967296) * 8 - 4;
    for (const e of this.ends) out[offset + e] = -20;
  }

  static mix(h: number, x: number): number { return fmix32((h ^ Math.imul(x + 1, 0x9e3779b9)) >>> 0); }

  static imageHash(img: ImageInput): number {
    let h = 0x9747b28c;
    for (let i = 0; i < img.pixels.length; i++) h = FakeModel.mix(h, Math.round(img.pixels[i]! * 64) & 0xffff);
    return h;
  }

  step(items: StepItem[]): Float32Array[] {
    if (this.delay > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, this.delay);
    this.steps++;
    this.maxBatch = Math.max(this.maxBatch, items.length);
    const V = this.vocabSize;
    return items.map((it) => {
      const s = it.seq as FakeSeq;
      if (s.released) throw new Error('step on a released sequence');
      const rows: number[] = [];
      let img = 0;
      for (const t of it.tokens) {
        if (t < 0 || t >= V) throw new Error(`token ${t} out of range`);
        if (t === this.imageId) {
          const image = it.images?.[img++];
          if (!this.vision || !image) throw new Error('image token without image');
          if (image.pixels.length !== 3 * this.vision.imageSize ** 2) throw new Error('bad image size');
          const ih = FakeModel.imageHash(image);
          for (let p = 0; p < this.vision.imageTokens; p++) { s.hash = FakeModel.mix(FakeModel.mix(s.hash, ih), p); s.length++; rows.push(s.hash); }
        } else { s.hash = FakeModel.mix(s.hash, t); s.length++; rows.push(s.hash); }
        if (s.length > this.contextLength) throw new Error(`context overflow: ${s.length} > ${this.contextLength}`);
      }
      const keep = it.allLogits ? rows : rows.slice(-1);
      const out = new Float32Array(keep.length * V);
      keep.forEach((h, r) => this.logitsFor(h, out, r * V));
      return out;
    });
  }
}
