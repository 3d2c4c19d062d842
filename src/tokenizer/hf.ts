/**
 * Hugging Face `tokenizer.json` for byte-level BPE: read and write.
 *
 * Written files use: model.type "BPE" with `vocab` (token string -> id) and `merges` (pairs, in
 * priority order) and `ignore_merges`; a pre-tokenizer Sequence of Split(Regex, Isolated) with
 * Lumen's pattern and ByteLevel(use_regex: false); a ByteLevel decoder; special tokens as
 * `added_tokens`. Token strings use the GPT-2 byte-to-unicode map: the printable Latin-1 bytes
 * ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves and the other 68 bytes map, in increasing
 * byte order, to U+0100, U+0101, ...
 *
 * Read: the same layout, plus GPT-2-style files whose ByteLevel pre-tokenizer carries the regex
 * (`use_regex: true`). Anything else (normalizers, prefix spaces, other models) is refused with a
 * message that says which field is unsupported.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../util/errors.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { Tokenizer, type TokenizerData } from './tokenizer.ts';

/** The GPT-2 pre-tokenisation pattern (what HF ByteLevel with use_regex: true applies). */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** byte -> the character that stands for it in byte-level token strings. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCharCode(printable(b) ? b : 256 + extra++));
  return out;
})();

const CHAR_TO_BYTE = new Map<string, number>(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** Bytes -> byte-level token string. */
export function bytesToTokenString(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += BYTE_TO_CHAR[b[i]!];
  return s;
}

/** Byte-level token string -> bytes; null if a character is outside the map. */
export function tokenStringToBytes(s: string): Uint8Array | null {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const b = CHAR_TO_BYTE.get(s[i]!);
    if (b === undefined) return null;
    out[i] = b;
  }
  return out;
}

/**
 * The merges list of a tokenizer, in priority order. For rank-based (tiktoken) tokenizers each
 * token of two or more bytes gets the one split that tiktoken's own merging reaches when only
 * lower ranks are allowed.
 */
export function mergesList(tok: Tokenizer): Array<[number, number]> {
  const d = tok.data;
  if (d.merges !== 'ranks') return d.merges;
  const out: Array<[number, number]> = [];
  for (let id = 0; id < d.tokens.length; id++) {
    const t = d.tokens[id];
    if (!t || t.length < 2) continue;
    const parts = limitedMerge(tok, t, id);
    if (parts.length !== 2) throw new InputError(`${d.name}: token ${id} cannot be built from two lower-ranked tokens (got ${parts.length} parts); not expressible as a merges list`);
    out.push([parts[0]!, parts[1]!]);
  }
  return out;
}

/** Merges `bytes` using only merges with priority < limit (quadratic; tokens are short). */
function limitedMerge(tok: Tokenizer, bytes: Uint8Array, limit: number): number[] {
  const m = tok.model;
  const ids = Array.from(bytes, (b) => m.byteIds[b]!);
  for (;;) {
    let best = limit, at = -1, res = -1;
    for (let i = 0; i + 1 < ids.length; i++) {
      const mg = m.merge(ids[i]!, ids[i + 1]!);
      if (mg && mg.priority < best) { best = mg.priority; at = i; res = mg.result; }
    }
    if (at < 0) return ids;
    ids.splice(at, 2, res);
  }
}

/** The tokenizer.json object for `tok`. */
export function toTokenizerJson(tok: Tokenizer): Record<string, unknown> {
  const d = tok.data;
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  d.tokens.forEach((t, id) => { if (t) { const s = bytesToTokenString(t); if (!Object.hasOwn(vocab, s)) vocab[s] = id; } });
  const merges = mergesList(tok).map(([l, r]) => [bytesToTokenString(d.tokens[l]!), bytesToTokenString(d.tokens[r]!)]);
  const added = [...d.specials].sort((a, b) => a[1] - b[1]).map(([content, id]) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: d.pattern }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: d.ignoreMerges, vocab, merges,
    },
  };
}

/** Writes `dir/tokenizer.json` atomically. */
export function saveTokenizerJson(tok: Tokenizer, dir: string): string {
  const path = join(dir, 'tokenizer.json');
  writeFileAtomic(path, JSON.stringify(toTokenizerJson(tok)) + '\n');
  return path;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses a tokenizer.json object; `file` names it in errors. */
export function fromTokenizerJson(j: unknown, file: string): TokenizerData {
  const fail = (what: string): never => { throw new InputError(`${file}: ${what}`); };
  if (!isObj(j)) fail('expected a JSON object');
  const o = j as Json;
  const model = o.model;
  if (!isObj(model)) fail('missing "model" object');
  const m = model as Json;
  if (m.type !== undefined && m.type !== 'BPE') fail(`model.type: expected "BPE", got ${JSON.stringify(m.type)}`);
  if (!isObj(m.vocab)) fail('model.vocab: expected an object of token string -> id');
  if (!Array.isArray(m.merges)) fail('model.merges: expected an array');
  for (const k of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) if (m[k]) fail(`model.${k}: ${JSON.stringify(m[k])} is not supported (byte-level BPE only)`);
  if (m.byte_fallback) fail('model.byte_fallback: not supported (byte-level BPE only)');
  if (o.normalizer !== null && o.normalizer !== undefined) fail(`normalizer: only null is supported, got type ${JSON.stringify((o.normalizer as Json).type)}`);

  // Pre-tokenizer: Sequence[Split(Regex), ByteLevel(use_regex false)] or ByteLevel(use_regex true).
  let pattern: string | null = null;
  const checkByteLevel = (p: Json, inSequence: boolean): void => {
    if (p.add_prefix_space) fail('pre_tokenizer ByteLevel.add_prefix_space: true is not supported');
    const useRegex = p.use_regex ?? true;
    if (useRegex) {
      if (inSequence && pattern !== null) fail('pre_tokenizer: a Split followed by ByteLevel with use_regex: true is not supported');
      pattern = GPT2_PATTERN;
    }
  };
  const pre = o.pre_tokenizer;
  if (!isObj(pre)) fail('pre_tokenizer: expected a ByteLevel or Sequence[Split, ByteLevel] object');
  const p = pre as Json;
  if (p.type === 'ByteLevel') checkByteLevel(p, false);
  else if (p.type === 'Sequence' && Array.isArray(p.pretokenizers)) {
    for (const q of p.pretokenizers as unknown[]) {
      if (!isObj(q)) fail('pre_tokenizer.pretokenizers: expected objects');
      const qq = q as Json;
      if (qq.type === 'Split') {
        const pat = qq.pattern as Json | undefined;
        if (!isObj(pat) || typeof pat.Regex !== 'string') fail('pre_tokenizer Split.pattern: expected {"Regex": "..."}');
        if (qq.invert) fail('pre_tokenizer Split.invert: true is not supported');
        if (qq.behavior !== 'Isolated') fail(`pre_tokenizer Split.behavior: expected "Isolated", got ${JSON.stringify(qq.behavior)}`);
        if (pattern !== null) fail('pre_tokenizer: more than one Split is not supported');
        pattern = (pat as Json).Regex as string;
      } else if (qq.type === 'ByteLevel') checkByteLevel(qq, true);
      else fail(`pre_tokenizer: unsupported pre-tokenizer type ${JSON.stringify(qq.type)} in the sequence`);
    }
  } else fail(`pre_tokenizer.type: expected "ByteLevel" or "Sequence", got ${JSON.stringify(p.type)}`);
  if (pattern === null) fail('pre_tokenizer: no split pattern found (expected a Split with a Regex, or ByteLevel with use_regex)');

  // Specials.
  const specials = new Map<string, number>();
  if (o.added_tokens !== undefined && o.added_tokens !== null) {
    if (!Array.isArray(o.added_tokens)) fail('added_tokens: expected an array');
    (o.added_tokens as unknown[]).forEach((a, i) => {
      if (!isObj(a) || typeof a.content !== 'string' || !Number.isInteger(a.id) || (a.id as number) < 0) fail(`added_tokens[${i}]: expected {"id": integer, "content": string}`);
      specials.set((a as Json).content as string, (a as Json).id as number);
    });
  }
  const specialIds = new Set(specials.values());

  // Vocabulary.
  const tokens: (Uint8Array | undefined)[] = [];
  for (const [s, id] of Object.entries(m.vocab as Json)) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) > 1 << 24) fail(`model.vocab[${JSON.stringify(s)}]: expected a non-negative integer id, got ${JSON.stringify(id)}`);
    if (specialIds.has(id as number)) continue; // an added token listed in the vocab too
    const b = tokenStringToBytes(s);
    if (b === null) fail(`model.vocab: token ${JSON.stringify(s)} has a character outside the byte-level alphabet (not a byte-level BPE vocabulary)`);
    if (tokens[id as number] !== undefined) fail(`model.vocab: id ${id as number} is used twice`);
    tokens[id as number] = b!;
  }
  const byString = new Map<string, number>();
  tokens.forEach((t, id) => { if (t) byString.set(bytesToTokenString(t), id); });
  const merges: Array<[number, number]> = (m.merges as unknown[]).map((x, i) => {
    let pair: [string, string];
    if (typeof x === 'string') {
      const sp = x.split(' ');
      if (sp.length !== 2) fail(`model.merges[${i}]: expected "left right", got ${JSON.stringify(x)}`);
      pair = [sp[0]!, sp[1]!];
    } else if (Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && typeof x[1] === 'string') pair = [x[0], x[1]];
    else fail(`model.merges[${i}]: expected a pair of token strings, got ${JSON.stringify(x)?.slice(0, 60)}`);
    const l = byString.get(pair![0]), r = byString.get(pair![1]);
    if (l === undefined || r === undefined) fail(`model.merges[${i}]: ${JSON.stringify(l === undefined ? pair![0] : pair![1])} is not in model.vocab`);
    if (!byString.has(pair![0] + pair![1])) fail(`model.merges[${i}]: the merged token ${JSON.stringify(pair![0] + pair![1])} is not in model.vocab`);
    return [l!, r!];
  });
  return { pattern: pattern!, tokens, merges, ignoreMerges: m.ignore_merges === true, specials, name: file };
}

/** Reads `dir/tokenizer.json` (or the file itself when `path` ends in .json). */
export function loadTokenizerJson(path: string): Tokenizer {
  const file = path.endsWith('.json') ? path : join(path, 'tokenizer.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`${file}: cannot read the tokenizer (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${file}: not valid JSON (${(e as Error).message}); the file is corrupt or truncated`);
  }
  const data = fromTokenizerJson(j, file);
  try {
    return new Tokenizer(data);
  } catch (e) {
    if (e instanceof InputError && !e.message.startsWith(file)) throw new InputError(`${file}: ${e.message}`);
    throw e;
  }
}
