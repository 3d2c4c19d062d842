/**
 * A hand-written scanner equivalent to CL100K_PATTERN, used instead of the regex on the encoder's
 * hot path (the regex engine call costs more than the rest of a cached word lookup).
 *
 * At position p with code point c (surrogate pairs are one code point, as in the `u` regex; a lone
 * surrogate is neither a letter, a number nor whitespace), the regex alternatives give:
 *  1. c = "'" followed by s t m d (either case), or ll ve re (either case): that contraction.
 *  2. c a letter: the run of letters. c not a letter, number, \r or \n, followed by a letter:
 *     c and the run of letters after it.
 *  3. c a number: up to three numbers.
 *  4. c = ' ' followed by a "symbol" (not whitespace, letter or number), or c a symbol: the
 *     optional space, the run of symbols, then the run of \r and \n after it.
 *  5. c whitespace: let W be the maximal whitespace run from p. If W holds a \r or \n, the word
 *     ends after the last \r or \n in W (`\s*` backtracks to it, `[\r\n]+` takes it).
 *  6. Else, if W reaches the end of the text, all of W; else if W is longer than one, W minus
 *     its last character (`\s+(?!\S)`).
 *  7. Else W (one whitespace character before a non-space).
 * Whitespace is JavaScript's `\s` (the class spelled out in pretokenize.ts). Every character
 * falls in one case, so the scanner never fails. Tests compare it with the regex on large text.
 */

const LETTER = 1, NUMBER = 2, SPACE = 4;
let bmp: Uint8Array | null = null;
const astral = new Map<number, number>();
const reL = /\p{L}/u, reN = /\p{N}/u, reS = /\s/u;

function classify(cp: number): number {
  const s = String.fromCodePoint(cp);
  return (reL.test(s) ? LETTER : 0) | (reN.test(s) ? NUMBER : 0) | (reS.test(s) ? SPACE : 0);
}

/** Class bits of every BMP code unit, built once per process from the regex classes themselves. */
function bmpTable(): Uint8Array {
  if (bmp) return bmp;
  const t = new Uint8Array(65536);
  for (let c = 0; c < 65536; c++) if (c < 0xd800 || c >= 0xe000) t[c] = classify(c);
  bmp = t;
  return t;
}

/** Splits text like CL100K_PATTERN; see the file comment for the rules. */
export class Cl100kScanner {
  private readonly t = bmpTable();

  /** Class of the code point at i and its length in code units (packed: cls | len << 3). */
  private at(text: string, i: number): number {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c >= 0xe000) return this.t[c]! | 8;
    if (c < 0xdc00 && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
        let k = astral.get(cp);
        if (k === undefined) { k = classify(cp); astral.set(cp, k); }
        return k | 16;
      }
    }
    return 8; // lone surrogate: a symbol
  }

  /** End of the word that starts at `pos` (< text.length). */
  next(text: string, pos: number): number {
    const n = text.length;
    const c = text.charCodeAt(pos);
    // 1. contractions
    if (c === 39 && pos + 1 < n) {
      const a = text.charCodeAt(pos + 1) | 32;
      if (a === 115 || a === 116 || a === 109 || a === 100) return pos + 2; // s t m d
      if (pos + 2 < n) {
        const b = text.charCodeAt(pos + 2) | 32;
        if ((a === 108 && b === 108) || (a === 118 && b === 101) || (a === 114 && b === 101)) return pos + 3; // ll ve re
      }
    }
    const k = this.at(text, pos);
    const cls = k & 7, len = k >> 3;
    // 2. letters, with one optional leading non-letter/number/newline
    if (cls & LETTER) return this.letters(text, pos + len);
    if (!(cls & NUMBER) && c !== 13 && c !== 10 && pos + len < n && (this.at(text, pos + len) & LETTER)) return this.letters(text, pos + len);
    // 3. numbers
    if (cls & NUMBER) {
      let e = pos + len;
      for (let i = 1; i < 3 && e < n; i++) { const k2 = this.at(text, e); if (!(k2 & NUMBER)) break; e += k2 >> 3; }
      return e;
    }
    // 4. symbols, optionally after one space, then \r \n
    let s = pos;
    if (c === 32 && pos + 1 < n && !(this.at(text, pos + 1) & 7)) s = pos + 1;
    else if (cls !== 0) s = -1;
    if (s >= 0) {
      let e = s;
      while (e < n) { const k2 = this.at(text, e); if (k2 & 7) break; e += k2 >> 3; }
      while (e < n) { const d = text.charCodeAt(e); if (d !== 13 && d !== 10) break; e++; }
      return e;
    }
    // 5-7. whitespace (all whitespace is in the BMP)
    let e = pos, lastNl = -1;
    while (e < n) {
      const d = text.charCodeAt(e);
      if (!(this.t[d]! & SPACE) || (d >= 0xd800 && d < 0xe000)) break;
      if (d === 13 || d === 10) lastNl = e;
      e++;
    }
    if (lastNl >= 0) return lastNl + 1;
    if (e === n || e - pos === 1) return e;
    return e - 1;
  }

  private letters(text: string, e: number): number {
    const n = text.length;
    while (e < n) { const k = this.at(text, e); if (!(k & LETTER)) break; e += k >> 3; }
    return e;
  }
}
