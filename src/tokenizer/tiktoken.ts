/**
 * Reads the tiktoken rank files that ship inside the installed `js-tiktoken` npm package
 * (node_modules/js-tiktoken/dist/ranks/<name>.js), without network and without executing them.
 *
 * Each file is an ES module `export default {...}` whose JSON object holds `pat_str`,
 * `special_tokens` ({text: id}) and `bpe_ranks`: lines of the form
 *   `<label> <first rank> <base64 token> <base64 token> ...`
 * where the tokens of a line take consecutive ranks from the first one. A token's rank is its id.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { InputError } from '../util/errors.ts';
import { CL100K_PATTERN, O200K_PATTERN } from './pretokenize.ts';

/** The encodings Lumen can load from js-tiktoken. */
export const TIKTOKEN_ENCODINGS = ['cl100k_base', 'o200k_base'] as const;
export type TiktokenEncoding = (typeof TIKTOKEN_ENCODINGS)[number];

/** Lumen's own spelling of each encoding's pre-tokenisation pattern (equivalent to the file's). */
export const TIKTOKEN_PATTERNS: Record<TiktokenEncoding, string> = { cl100k_base: CL100K_PATTERN, o200k_base: O200K_PATTERN };

/** A parsed rank file. */
export interface TiktokenRanks {
  /** Bytes of each rank (undefined for ranks the file skips). */
  tokens: (Uint8Array | undefined)[];
  specials: Map<string, number>;
  /** The pattern string stored in the file (informational; Lumen uses TIKTOKEN_PATTERNS). */
  filePattern: string;
}

/** Path of the rank file of `name` inside the installed js-tiktoken package. */
export function tiktokenRankPath(name: string): string {
  if (!(TIKTOKEN_ENCODINGS as readonly string[]).includes(name)) {
    throw new InputError(`tiktoken encoding: expected one of ${TIKTOKEN_ENCODINGS.join(', ')}, got '${name}'`);
  }
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('js-tiktoken'); // <pkg>/dist/index.cjs
  } catch {
    throw new InputError(`tiktoken encoding ${name}: the js-tiktoken package is not installed (run npm install)`);
  }
  return join(dirname(pkg), 'ranks', `${name}.js`);
}

/** Parses the text of a js-tiktoken rank module; `file` names it in errors. */
export function parseTiktokenRanks(text: string, file: string): TiktokenRanks {
  const open = text.indexOf('{');
  const close = text.lastIndexOf('}');
  if (open < 0 || close < open) throw new InputError(`${file}: expected a module exporting a JSON object, found no '{...}'`);
  let obj: unknown;
  try {
    obj = JSON.parse(text.slice(open, close + 1));
  } catch (e) {
    throw new InputError(`${file}: the rank object is not valid JSON (${(e as Error).message}); the file is corrupt or truncated`);
  }
  const o = obj as { pat_str?: unknown; special_tokens?: unknown; bpe_ranks?: unknown };
  if (typeof o.bpe_ranks !== 'string' || typeof o.pat_str !== 'string' || typeof o.special_tokens !== 'object' || o.special_tokens === null) {
    throw new InputError(`${file}: expected fields pat_str (string), special_tokens (object) and bpe_ranks (string)`);
  }
  const tokens: (Uint8Array | undefined)[] = [];
  const lines = o.bpe_ranks.split('\n');
  lines.forEach((line, li) => {
    if (line === '') return;
    const fields = line.split(' ');
    const first = Number(fields[1]);
    if (fields.length < 2 || !Number.isInteger(first) || first < 0) {
      throw new InputError(`${file}: bpe_ranks line ${li + 1}: expected '<label> <first rank> <base64>...', got '${line.slice(0, 60)}'`);
    }
    for (let i = 2; i < fields.length; i++) {
      const b64 = fields[i]!;
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
        throw new InputError(`${file}: bpe_ranks line ${li + 1}, rank ${first + i - 2}: '${b64.slice(0, 40)}' is not base64; the file is corrupt`);
      }
      const rank = first + i - 2;
      if (tokens[rank] !== undefined) throw new InputError(`${file}: rank ${rank} appears twice`);
      tokens[rank] = new Uint8Array(Buffer.from(b64, 'base64'));
    }
  });
  if (tokens.length < 256) throw new InputError(`${file}: expected at least 256 ranks, found ${tokens.length}; the file is truncated`);
  const specials = new Map<string, number>();
  for (const [k, v] of Object.entries(o.special_tokens as Record<string, unknown>)) {
    if (!Number.isInteger(v) || (v as number) < 0) throw new InputError(`${file}: special token ${k}: expected a non-negative integer id, got ${JSON.stringify(v)}`);
    if (tokens[v as number] !== undefined) throw new InputError(`${file}: special token ${k} reuses rank ${v as number} of a BPE token`);
    specials.set(k, v as number);
  }
  return { tokens, specials, filePattern: o.pat_str };
}

/** Reads and parses the rank file of `name` from the installed js-tiktoken package. */
export function readTiktokenRanks(name: string): TiktokenRanks {
  const path = tiktokenRankPath(name);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(`${path}: cannot read the ${name} rank file (${(e as Error).message})`);
  }
  return parseTiktokenRanks(text, path);
}
