/**
 * Pre-tokenisation: the regular expression that cuts text into "words" before byte-level BPE
 * runs inside each word. Merges never cross a word boundary.
 *
 * The two GPT-4-family patterns, written here from their public descriptions:
 *
 * cl100k (GPT-4, the default), alternatives tried in order at each position:
 *   1. an apostrophe contraction, case-insensitive: 's 't 're 've 'm 'll 'd
 *   2. one optional character that is not a letter, digit or line break, then a run of letters
 *   3. one to three digits
 *   4. an optional space, a run of characters that are not whitespace, letters or digits,
 *      then any line breaks
 *   5. optional whitespace ending in line breaks
 *   6. whitespace not followed by a non-space (so the last space stays with the next word)
 *   7. any remaining whitespace
 *
 * o200k (GPT-4o) differs in words: a word is an optional leading non-letter/digit character,
 * then a cased "camel" run (upper/title/modifier/other letters and marks, then lower-case ones,
 * or an upper-case run with optional lower-case tail), with the contraction glued on at the end;
 * and the punctuation run may also swallow trailing '/' characters.
 *
 * Whitespace is written as an explicit class equal to JavaScript's `\s`, so the pattern means
 * the same in every regex engine that reads a saved tokenizer.json (the Rust and JS HF tokenizers
 * translate `\s` with different Unicode tables).
 *
 * The encoder and the training word counter use a hand-written scanner equivalent to the cl100k
 * pattern (cl100k-scanner.ts, about 4x faster than the regex); other patterns run as regexes.
 */
import { InputError } from '../util/errors.ts';

/** JavaScript's `\s`, spelled out. */
const WS = '\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';
/** Contraction suffixes, case-insensitive, without the apostrophe. */
const CONTRACTION = "(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])";

/** The cl100k_base (GPT-4) pre-tokenisation pattern. */
export const CL100K_PATTERN = [
  `'${CONTRACTION}`,
  `[^\\r\\n\\p{L}\\p{N}]?\\p{L}+`,
  `\\p{N}{1,3}`,
  ` ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*`,
  `[${WS}]*[\\r\\n]+`,
  `[${WS}]+(?![^${WS}])`,
  `[${WS}]+`,
].join('|');

const UPPERISH = '[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]';
const LOWERISH = '[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]';

/** The o200k_base (GPT-4o) pre-tokenisation pattern. */
export const O200K_PATTERN = [
  `[^\\r\\n\\p{L}\\p{N}]?${UPPERISH}*${LOWERISH}+(?:'${CONTRACTION})?`,
  `[^\\r\\n\\p{L}\\p{N}]?${UPPERISH}+${LOWERISH}*(?:'${CONTRACTION})?`,
  `\\p{N}{1,3}`,
  ` ?[^${WS}\\p{L}\\p{N}]+[\\r\\n/]*`,
  `[${WS}]*[\\r\\n]+`,
  `[${WS}]+(?![^${WS}])`,
  `[${WS}]+`,
].join('|');

/**
 * cl100k with every digit its own word (no multi-digit tokens), so a number is read and written
 * digit by digit: the task tokenizer of the multimodal model uses it for 4-digit answers.
 */
export const CL100K_DIGITS_PATTERN = CL100K_PATTERN.replace('\\p{N}{1,3}', '\\p{N}');

/** Names accepted wherever a pattern can be chosen by name. */
export const NAMED_PATTERNS: Record<string, string> = { cl100k: CL100K_PATTERN, o200k: O200K_PATTERN, 'cl100k-digits': CL100K_DIGITS_PATTERN };

/** Resolves a pattern name ('cl100k', 'o200k') or returns the regex source unchanged. */
export function resolvePattern(nameOrSource: string): string {
  return NAMED_PATTERNS[nameOrSource] ?? nameOrSource;
}

/**
 * A compiled pre-tokeniser. `split` yields the words of a string, in order; their concatenation
 * is the input (every pattern used here matches at every position; `compile` rejects patterns
 * that leave a gap at runtime rather than silently dropping text).
 */
export class PreTokenizer {
  /** Sticky + unicode: each match must start where the previous one ended. */
  private readonly re: RegExp;

  constructor(readonly source: string) {
    try {
      this.re = new RegExp(source, 'uy');
    } catch (e) {
      throw new InputError(`pre-tokenisation pattern: not a valid JavaScript regular expression (${(e as Error).message}): ${source.slice(0, 200)}`);
    }
    if (this.re.test('')) throw new InputError(`pre-tokenisation pattern: matches the empty string, expected every match to consume text: ${source.slice(0, 200)}`);
  }

  /**
   * Calls `fn(piece)` for each word of `text` in order. Uses `RegExp.test` with the sticky flag
   * and `lastIndex`, which avoids allocating a match array per word.
   */
  forEach(text: string, fn: (piece: string) => void): void {
    const re = this.re;
    const n = text.length;
    let pos = 0;
    re.lastIndex = 0;
    while (pos < n) {
      if (!re.test(text)) {
        throw new InputError(`pre-tokenisation pattern does not match at offset ${pos} (character U+${text.codePointAt(pos)!.toString(16).toUpperCase().padStart(4, '0')}); every character must belong to a word`);
      }
      const end = re.lastIndex;
      if (end === pos) throw new InputError(`pre-tokenisation pattern matched an empty word at offset ${pos}`);
      fn(text.slice(pos, end));
      pos = end;
    }
  }

  /** The words of `text` as an array. */
  split(text: string): string[] {
    const out: string[] = [];
    this.forEach(text, (p) => out.push(p));
    return out;
  }

  /** The underlying sticky regex (callers must reset `lastIndex`); used by hot loops. */
  get regex(): RegExp {
    return this.re;
  }
}
