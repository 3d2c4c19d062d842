/**
 * The Tokenizer: pre-tokenisation + byte-level BPE + special tokens, with encode / decode that
 * are lossless on any well-formed string and on any byte sequence (`encodeBytes`).
 *
 *   const tok = Tokenizer.fromTiktoken('cl100k_base');
 *   tok.encode('hello <|endoftext|>');                       // special text encoded as plain text
 *   tok.encode('hello <|endoftext|>', { allowedSpecial: 'all' }); // ... or as the special id
 *   tok.decode(ids); tok.decodeBytes(ids);
 *
 * Strings are encoded as UTF-8; a lone surrogate (not representable in UTF-8) becomes U+FFFD,
 * exactly as in tiktoken. Use `encodeBytes` for arbitrary bytes, including invalid UTF-8.
 *
 * Speed: words are cut by a hand-written scanner for the cl100k pattern (cl100k-scanner.ts), else
 * by the regex with the sticky flag and `test` (no match arrays, no substrings); each
 * word is hashed and looked up in place in a typed-array table (word-table.ts) that holds every
 * whole token plus a bounded cache of merged words; only new words reach BpeModel's merge loop,
 * after a hand-written UTF-8 encoding straight from the char codes.
 */
import { InputError } from '../util/errors.ts';
import { BpeModel, bytesKey, type Merge } from './bpe.ts';
import { CL100K_PATTERN, PreTokenizer } from './pretokenize.ts';
import { Cl100kScanner } from './cl100k-scanner.ts';
import { hashRange, WordTable } from './word-table.ts';
import { SPECIAL_TOKENS } from './special.ts';
import { loadTokenizerJson, saveTokenizerJson } from './hf.ts';
import { readTiktokenRanks, TIKTOKEN_PATTERNS, type TiktokenEncoding } from './tiktoken.ts';

/** Which special tokens `encode` may produce: none (default), all, or the named ones. */
export interface EncodeOptions {
  allowedSpecial?: 'all' | ReadonlySet<string>;
}

/** Everything that defines a tokenizer; what files are parsed into and written from. */
export interface TokenizerData {
  /** Pre-tokenisation regex source (JavaScript syntax, used with the u flag). */
  pattern: string;
  /** Bytes of each BPE token by id; undefined at ids that hold special tokens or nothing. */
  tokens: (Uint8Array | undefined)[];
  /**
   * 'ranks': tiktoken semantics (every split of a token into two tokens merges, priority = id);
   * otherwise the explicit merges (priority = position in the list).
   */
  merges: 'ranks' | Array<[number, number]>;
  /** Emit a word whole when it is a token (tiktoken behaviour; HF `ignore_merges`). */
  ignoreMerges: boolean;
  /** Special token text -> id. */
  specials: Map<string, number>;
  /** A name for messages and metadata (e.g. 'cl100k_base'). */
  name: string;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Words cached per tokenizer before the cache is dropped and refilled (bounded memory). */
const CACHE_ENTRIES = 1 << 18;
/** Code units of cached words, and ids of their encodings, before the cache is dropped. */
const CACHE_UNITS = 1 << 22;
/** Longer words are encoded without caching them. */
const CACHE_MAX_WORD = 256;

function escapeRegex(s: string): string {
  return s.replace(/[\\^$*+?.()|[\]{}/-]/g, '\\$&');
}

/** Byte-level BPE tokenizer. Instances are not shared between threads (scratch buffers). */
export class Tokenizer {
  readonly model: BpeModel;
  readonly pre: PreTokenizer;
  /** The hand-written equivalent of the cl100k pattern, when that is the pattern. */
  private readonly scanner: Cl100kScanner | null;
  /** Word -> ids: whole tokens (frozen, when ignoreMerges) and a bounded cache of merged words. */
  private readonly words: WordTable;
  private readonly scratch: number[] = [];
  private readonly idBytes: (Uint8Array | undefined)[];
  private readonly specialRegexAll: RegExp | null;
  private buf = new Uint8Array(1024);
  /** Largest id + 1. */
  readonly vocabSize: number;

  /** @param opts.cacheWords bound of the word cache (entries; code units are bounded at 16x that) */
  constructor(readonly data: TokenizerData, opts: { cacheWords?: number } = {}) {
    this.pre = new PreTokenizer(data.pattern);
    this.scanner = data.pattern === CL100K_PATTERN ? new Cl100kScanner() : null;
    const { tokens } = data;
    if (data.merges === 'ranks') {
      this.model = new BpeModel(tokens, (add) => addAllSplits(tokens, add), data.ignoreMerges, tokens.length * 2.5);
    } else {
      const list = data.merges;
      const byKey = new Map<string, number>();
      tokens.forEach((t, id) => { if (t) { const k = bytesKey(t); if (!byKey.has(k)) byKey.set(k, id); } });
      this.model = new BpeModel(tokens, (add) => {
        list.forEach(([l, r], i) => {
          const a = tokens[l], b = tokens[r];
          if (!a || !b) throw new InputError(`${data.name}: merge ${i} refers to an id without a token (${l}, ${r})`);
          const result = byKey.get(bytesKey(a) + bytesKey(b));
          if (result === undefined) throw new InputError(`${data.name}: merge ${i} (${l} + ${r}) produces bytes that are not in the vocabulary`);
          add({ left: l, right: r, priority: i, result });
        });
      }, data.ignoreMerges, list.length);
    }
    let max = tokens.length - 1;
    this.idBytes = tokens.slice();
    for (const [text, id] of data.specials) {
      if (!Number.isInteger(id) || id < 0) throw new InputError(`${data.name}: special token ${text} has invalid id ${id}`);
      if (tokens[id]) throw new InputError(`${data.name}: special token ${text} reuses id ${id} of a BPE token`);
      if (text === '') throw new InputError(`${data.name}: a special token is the empty string`);
      this.idBytes[id] = utf8.encode(text);
      max = Math.max(max, id);
    }
    this.vocabSize = max + 1;
    // Whole tokens first (frozen), when a word that is a token is emitted whole.
    const whole: Array<[string, number]> = [];
    let wholeUnits = 0;
    if (data.ignoreMerges) {
      const seen = new Set<string>();
      for (let id = 0; id < tokens.length; id++) {
        const t = tokens[id];
        if (!t) continue;
        let s: string;
        try { s = utf8Strict.decode(t); } catch { continue; }
        if (seen.has(s)) continue;
        seen.add(s);
        whole.push([s, id]);
        wholeUnits += s.length;
      }
    }
    const cacheWords = opts.cacheWords ?? CACHE_ENTRIES;
    const cacheUnits = opts.cacheWords === undefined ? CACHE_UNITS : opts.cacheWords * 16;
    this.words = new WordTable(whole.length + cacheWords, wholeUnits + cacheUnits, whole.length + cacheUnits);
    for (const [s, id] of whole) this.words.insert(s, 0, s.length, hashRange(s, 0, s.length), [id], 1);
    this.words.freeze();
    this.specialRegexAll = data.specials.size > 0 ? specialRegex([...data.specials.keys()]) : null;
  }

  /**
   * The GPT-4 (cl100k_base) or GPT-4o (o200k_base) encoding from the ranks inside the installed
   * js-tiktoken package. Keeps the file's special tokens and ids (e.g. `<|endoftext|>`), then
   * adds Lumen's special tokens that the file lacks at the next free ids, in the order of
   * src/tokenizer/special.ts. Loading takes about 0.3 s (cl100k) / 0.8 s (o200k): keep the instance.
   */
  static fromTiktoken(name: TiktokenEncoding): Tokenizer {
    const r = readTiktokenRanks(name);
    const specials = new Map(r.specials);
    let next = Math.max(r.tokens.length, ...[...specials.values()].map((id) => id + 1));
    for (const s of SPECIAL_TOKENS) if (!specials.has(s)) specials.set(s, next++);
    return new Tokenizer({ pattern: TIKTOKEN_PATTERNS[name], tokens: r.tokens, merges: 'ranks', ignoreMerges: true, specials, name });
  }

  /** Loads `dir/tokenizer.json` (Hugging Face byte-level BPE; or a path to the .json itself). */
  static load(dir: string): Tokenizer {
    return loadTokenizerJson(dir);
  }

  /** Writes `dir/tokenizer.json` atomically; returns its path. */
  save(dir: string): string {
    return saveTokenizerJson(this, dir);
  }

  /** Encodes text; special-token text is plain text unless allowed by `opts.allowedSpecial`. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    const allowed = opts.allowedSpecial;
    if (allowed === undefined || (allowed !== 'all' && allowed.size === 0) || this.data.specials.size === 0) {
      this.encodeOrdinaryInto(text, out);
      return out;
    }
    let re: RegExp;
    if (allowed === 'all') re = this.specialRegexAll!;
    else {
      for (const s of allowed) if (!this.data.specials.has(s)) throw new InputError(`allowedSpecial: '${s}' is not a special token of ${this.data.name} (known: ${[...this.data.specials.keys()].join(' ')})`);
      re = specialRegex([...allowed]);
    }
    re.lastIndex = 0;
    let start = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      this.encodeOrdinaryInto(text.slice(start, m.index), out);
      out.push(this.data.specials.get(m[0])!);
      start = m.index + m[0].length;
    }
    this.encodeOrdinaryInto(text.slice(start), out);
    return out;
  }

  /** Encodes each text (same options for all). */
  encodeBatch(texts: readonly string[], opts: EncodeOptions = {}): number[][] {
    return texts.map((t) => this.encode(t, opts));
  }

  /**
   * Encodes arbitrary bytes losslessly: maximal valid UTF-8 runs are encoded as text; each run
   * of invalid bytes is one word for the byte-level merges. `decodeBytes` gives the bytes back.
   */
  encodeBytes(bytes: Uint8Array): number[] {
    const out: number[] = [];
    let i = 0;
    const n = bytes.length;
    while (i < n) {
      let j = i;
      while (j < n) { const l = utf8SeqLen(bytes, j); if (l === 0) break; j += l; }
      if (j > i) this.encodeOrdinaryInto(utf8Decoder.decode(bytes.subarray(i, j)), out);
      let k = j;
      while (k < n && utf8SeqLen(bytes, k) === 0) k++;
      if (k > j) this.model.encodeWord(bytes.slice(j, k), k - j, out);
      i = k;
    }
    return out;
  }

  /** The bytes of the tokens, concatenated. Throws InputError on an unknown id. */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    let len = 0;
    for (let i = 0; i < ids.length; i++) len += this.tokenBytesChecked(ids[i]!, i).length;
    const out = new Uint8Array(len);
    let o = 0;
    for (let i = 0; i < ids.length; i++) { const b = this.idBytes[ids[i]!]!; out.set(b, o); o += b.length; }
    return out;
  }

  /** Decodes to a string; invalid UTF-8 (e.g. a cut multi-byte character) becomes U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    return utf8Decoder.decode(this.decodeBytes(ids));
  }

  /** Bytes of one id (the UTF-8 text for a special token). */
  idToTokenBytes(id: number): Uint8Array {
    return this.tokenBytesChecked(id, -1);
  }

  /** Id of a special token; InputError if this tokenizer has no such token. */
  specialTokenId(name: string): number {
    const id = this.data.specials.get(name);
    if (id === undefined) throw new InputError(`special token '${name}' is not in tokenizer ${this.data.name} (known: ${[...this.data.specials.keys()].join(' ')})`);
    return id;
  }

  /** Drops the word -> ids cache (benchmarks use it to measure encoding from cold). */
  clearCache(): void {
    this.words.dropCache();
  }

  /** Special token text -> id. */
  get specialTokens(): ReadonlyMap<string, number> {
    return this.data.specials;
  }

  /** True when `id` is a special token. */
  isSpecial(id: number): boolean {
    return this.data.tokens[id] === undefined && this.idBytes[id] !== undefined;
  }

  private tokenBytesChecked(id: number, index: number): Uint8Array {
    const b = Number.isInteger(id) && id >= 0 ? this.idBytes[id] : undefined;
    if (b === undefined) {
      throw new InputError(`token id ${JSON.stringify(id)}${index >= 0 ? ` at index ${index}` : ''}: expected an id of tokenizer ${this.data.name} (0..${this.vocabSize - 1} holding a token)`);
    }
    return b;
  }

  /**
   * Encodes text with no special tokens into `out`. The hot loop: no allocation per word (the
   * word is hashed, looked up and UTF-8 encoded in place, from the char codes of `text`).
   */
  private encodeOrdinaryInto(text: string, out: number[]): void {
    const re = this.pre.regex;
    const scanner = this.scanner;
    const words = this.words;
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
      const h = hashRange(text, pos, end);
      let e = words.find(text, pos, end, h);
      if (e < 0) e = this.encodeMiss(text, pos, end, h, out);
      if (e >= 0) words.pushIds(e, out);
      pos = end;
    }
  }

  /**
   * Runs the merge loop on text[start, end). Caches the result and returns its entry (the caller
   * pushes it), or pushes the ids itself and returns -1 when the word is too long to cache.
   */
  private encodeMiss(text: string, start: number, end: number, h: number, out: number[]): number {
    if (this.buf.length < (end - start) * 3) this.buf = new Uint8Array((end - start) * 3);
    const buf = this.buf;
    let w = 0;
    for (let i = start; i < end; i++) {
      let c = text.charCodeAt(i);
      if (c < 0x80) { buf[w++] = c; continue; }
      if (c < 0x800) { buf[w++] = 0xc0 | (c >> 6); buf[w++] = 0x80 | (c & 63); continue; }
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < end) {
        const d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) {
          const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
          buf[w++] = 0xf0 | (cp >> 18); buf[w++] = 0x80 | ((cp >> 12) & 63); buf[w++] = 0x80 | ((cp >> 6) & 63); buf[w++] = 0x80 | (cp & 63);
          i++;
          continue;
        }
      }
      if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // lone surrogate: U+FFFD, as TextEncoder does
      buf[w++] = 0xe0 | (c >> 12); buf[w++] = 0x80 | ((c >> 6) & 63); buf[w++] = 0x80 | (c & 63);
    }
    const ids = this.scratch;
    ids.length = 0;
    // A word that is a whole token was found in the table already (ignoreMerges), so skip that check.
    this.model.encodeWord(buf, w, ids, this.data.ignoreMerges);
    if (end - start <= CACHE_MAX_WORD) {
      const e = this.words.insert(text, start, end, h, ids, ids.length);
      if (e >= 0) return e;
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
    return -1;
  }
}

/** Length of the valid UTF-8 sequence starting at `i`, or 0 if the byte there starts none. */
function utf8SeqLen(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number): boolean => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // surrogates
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xf0 && c1 < 0x90) return 0;
    if (c === 0xf4 && c1 >= 0x90) return 0;
    return 4;
  }
  return 0;
}

function specialRegex(names: string[]): RegExp {
  // Longest first, so a special token that is a prefix of another never wins.
  const sorted = [...names].sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
  return new RegExp(sorted.map(escapeRegex).join('|'), 'gu');
}

/** tiktoken semantics: for each token, each split into two tokens is a merge with the token's rank. */
function addAllSplits(tokens: readonly (Uint8Array | undefined)[], add: (m: Merge) => void): void {
  const byKey = new Map<string, number>();
  const keys: string[] = [];
  for (let id = 0; id < tokens.length; id++) {
    const t = tokens[id];
    if (!t) continue;
    const k = bytesKey(t);
    keys[id] = k;
    if (!byKey.has(k)) byKey.set(k, id);
  }
  for (let id = 0; id < tokens.length; id++) {
    const k = keys[id];
    if (k === undefined || k.length < 2) continue;
    for (let s = 1; s < k.length; s++) {
      const l = byKey.get(k.slice(0, s));
      if (l === undefined) continue;
      const r = byKey.get(k.slice(s));
      if (r !== undefined) add({ left: l, right: r, priority: id, result: id });
    }
  }
}
