/** The hand-written cl100k scanner cuts exactly where the cl100k regex does. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cl100kScanner } from '../../src/tokenizer/cl100k-scanner.ts';
import { CL100K_PATTERN, PreTokenizer } from '../../src/tokenizer/pretokenize.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { mixedText } from './mixed-text.ts';

const scanner = new Cl100kScanner();
const regex = new PreTokenizer(CL100K_PATTERN);

function scan(text: string): string[] {
  const out: string[] = [];
  for (let p = 0; p < text.length;) { const e = scanner.next(text, p); out.push(text.slice(p, e)); p = e; }
  return out;
}

test('scanner = regex on 1 MB of mixed text', () => {
  const text = mixedText(1_000_000, 13);
  assert.deepEqual(scan(text), regex.split(text));
});

test('scanner = regex on random strings over an adversarial alphabet (seeded)', () => {
  const alphabet = ["'", 's', 'S', 'l', 'L', 'v', 'e', 'E', 'r', 'R', 't', 'd', 'M', 'x', '1', '٣', '½', 'Ⅻ', ' ', '  ', '\t', '\n', '\r', '\v', '\f',
    '\u00a0', '\u1680', '\u2000', '\u3000', '\ufeff', '\u0085', '\u2028', '\u2029', '\u200b', '.', ',', '-', '/', '\\', 'é', 'e\u0301', '漢', 'ㇰ',
    '👍', '🏽', '\u200d', '\ud800', '\udc00', '𝕏', '𐍈', '𝟘', '\u{10ffff}', '\u{e0001}'];
  const rng = new Rng(2024);
  for (let k = 0; k < 5000; k++) {
    let s = '';
    const m = rng.int(30);
    for (let i = 0; i < m; i++) s += alphabet[rng.int(alphabet.length)];
    assert.deepEqual(scan(s), regex.split(s), JSON.stringify(s));
  }
});
