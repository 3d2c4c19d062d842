/**
 * The contamination check's text normalisation: keep letters and digits (Unicode \p{L} and
 * \p{N}), lower-cased; drop spaces, punctuation and every other symbol. "The cat, 2 mats!" →
 * "thecat2mats". The string version (for evaluation items) and the streaming byte version (for
 * the training corpus, UTF-8) give the same bytes for the same text.
 */

/** ASCII byte → its normalised byte, or -1 to drop it. */
const ASCII = new Int16Array(128).fill(-1);
for (let c = 48; c <= 57; c++) ASCII[c] = c;
for (let c = 97; c <= 122; c++) ASCII[c] = c;
for (let c = 65; c <= 90; c++) ASCII[c] = c + 32;

const LETTER_OR_DIGIT = /^[\p{L}\p{N}]$/u;
const nonAsciiCache = new Map<number, Uint8Array | null>();

/** The normalised UTF-8 bytes of one non-ASCII code point, or null to drop it. */
function nonAscii(cp: number): Uint8Array | null {
  let v = nonAsciiCache.get(cp);
  if (v === undefined) {
    const ch = String.fromCodePoint(cp);
    v = LETTER_OR_DIGIT.test(ch) ? new Uint8Array(Buffer.from(ch.toLowerCase(), 'utf8')) : null;
    nonAsciiCache.set(cp, v);
  }
  return v;
}

/** Normalises a string (evaluation items). */
export function normaliseText(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 128) {
      const v = ASCII[cp]!;
      if (v >= 0) out += String.fromCharCode(v);
    } else {
      const b = nonAscii(cp);
      if (b) out += Buffer.from(b).toString('utf8');
    }
  }
  return out;
}

/**
 * Streaming normaliser of UTF-8 bytes into a growing buffer. Feed chunks with `push`; a
 * multi-byte character split across chunks is carried over. Invalid bytes are dropped.
 */
export class ByteNormaliser {
  out: Uint8Array;
  length = 0;
  private carry: number[] = [];

  constructor(capacity: number) {
    this.out = new Uint8Array(Math.max(16, capacity));
  }

  private grow(extra: number): void {
    if (this.length + extra <= this.out.length) return;
    const next = new Uint8Array(Math.max(this.out.length * 2, this.length + extra));
    next.set(this.out.subarray(0, this.length));
    this.out = next;
  }

  /** Appends one raw byte (used for the separator between files). */
  pushRaw(b: number): void {
    this.grow(1);
    this.out[this.length++] = b;
  }

  /** Normalises and appends a chunk. */
  push(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.carry.length > 0) {
      buf = new Uint8Array(this.carry.length + chunk.length);
      buf.set(this.carry);
      buf.set(chunk, this.carry.length);
      this.carry = [];
    }
    // ASCII output never exceeds the input; multi-byte characters grow by at most 2x (lower-casing).
    this.grow(buf.length * 2);
    const out = this.out;
    let o = this.length;
    const n = buf.length;
    let i = 0;
    while (i < n) {
      const b = buf[i]!;
      if (b < 128) {
        const v = ASCII[b]!;
        if (v >= 0) out[o++] = v;
        i++;
        continue;
      }
      const len = b >= 0xf0 && b < 0xf8 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;
      if (len === 0) { i++; continue; } // stray continuation or invalid lead byte
      if (i + len > n) { this.carry = Array.from(buf.subarray(i)); break; }
      let cp = len === 2 ? b & 0x1f : len === 3 ? b & 0x0f : b & 0x07;
      let ok = true;
      for (let j = 1; j < len; j++) {
        const c = buf[i + j]!;
        if ((c & 0xc0) !== 0x80) { ok = false; break; }
        cp = (cp << 6) | (c & 0x3f);
      }
      if (!ok) { i++; continue; }
      i += len;
      const v = nonAscii(cp);
      if (v) {
        for (let j = 0; j < v.length; j++) out[o++] = v[j]!;
      }
    }
    this.length = o;
  }

  /** Drops an incomplete character left at the end of a file. */
  endFile(): void {
    this.carry = [];
  }

  /** The normalised bytes so far. */
  bytes(): Uint8Array {
    return this.out.subarray(0, this.length);
  }
}
