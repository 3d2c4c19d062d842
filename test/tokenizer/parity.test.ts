/**
 * Exact parity with js-tiktoken (cl100k_base, o200k_base) on large varied text: source code
 * from node_modules and generated prose in Latin, Cyrillic, Greek, CJK, kana, Arabic and
 * Devanagari scripts with combining marks, emoji and ZWJ sequences, long whitespace and digit
 * runs, contractions, every kind of line break, astral and unassigned code points.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEncoding } from 'js-tiktoken';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { PreTokenizer, CL100K_PATTERN, O200K_PATTERN } from '../../src/tokenizer/pretokenize.ts';
import { readTiktokenRanks } from '../../src/tokenizer/tiktoken.ts';
import { mixedText, proseText } from './mixed-text.ts';

/** Index of the first difference, or -1. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

const EDGE_CASES = [
  '', ' ', '  ', '\n', ' \n', '\n ', 'a', "I'm", "I'M", "they'll've", "'s", "''s", "x's'", 'don\'t', "DON'T", "o'Neil's",
  'hello  world', 'hello   \n\n  world   ', 'tab\there', '   leading', 'trailing   ', '\r\n\r\n', '\r\r\n\n',
  '12345678901234567890', '1,234.56', '٣٤٥٦', '१२३४', '½⅓¼', 'x²', 'a1b2c3', '...', '!!!???', '?!\n\n', '// comment\n',
  '<|endoftext|>', '<|endoftext', 'text<|endoftext|>more', '<|fim_prefix|><|pad|><|user|>',
  '\u00a0\u00a0x', '\u3000漢字', 'x\ufeffy', '\ufeff', '\u2028\u2029', '\u0085', 'e\u0301', 'ÉCOLE', 'Ǆemal', 'ǅx',
  '👨‍👩‍👧‍👦', '🏳️‍🌈🏳️‍🌈', '🇫🇷🇩🇪', 'a👍🏽b', '𝕏𝕐', '𐍈', '\u{10ffff}', '\ud800', 'x\udc00y', 'a\ud83d',
  'HTTPServerError', 'camelCaseWord', 'snake_case_word', 'URL/path/to/file', 'a/b//c///', '\t\t\tindent', ' '.repeat(1000) + 'x',
  '9'.repeat(1001), '-'.repeat(777), '=-'.repeat(300), '漢字仮名交じり文'.repeat(40), 'абвгдеёжзийклмнопрстуфхцчшщ'.repeat(30),
  ' ' + 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk'.repeat(20), '👍🏽'.repeat(200), '日本語のテキストです。', 'Привет, мир!', 'مرحبا بالعالم', 'Ελληνικά', 'हिन्दी',
];

const cache = new Map<string, [Tokenizer, ReturnType<typeof getEncoding>]>();
function both(name: 'cl100k_base' | 'o200k_base'): [Tokenizer, ReturnType<typeof getEncoding>] {
  if (!cache.has(name)) cache.set(name, [Tokenizer.fromTiktoken(name), getEncoding(name)]);
  return cache.get(name)!;
}

for (const name of ['cl100k_base', 'o200k_base'] as const) {
  test(`${name}: ids identical to js-tiktoken on edge cases and ~1 MB of mixed text`, () => {
    const [ours, ref] = both(name);
    for (const t of EDGE_CASES) assert.deepEqual(ours.encode(t), ref.encode(t, [], []), `text ${JSON.stringify(t.slice(0, 40))}`);
    const text = name === 'cl100k_base' ? mixedText(1_000_000, 7) : mixedText(600_000, 11);
    const a = ours.encode(text);
    const b = ref.encode(text, [], []);
    const d = firstDiff(a, b);
    assert.equal(d, -1, d < 0 ? '' : `first mismatch at token ${d}: near ${JSON.stringify(ref.decode(b.slice(Math.max(0, d - 3), d + 3)))}`);
    assert.ok(a.length > 100_000, 'the text is large');
  });

  test(`${name}: allowed special tokens match js-tiktoken`, () => {
    const [ours, ref] = both(name);
    const text = proseText(20_000, 5) + '<|endoftext|>x<|endofprompt|>' + (name === 'cl100k_base' ? '<|fim_middle|>' : '');
    assert.deepEqual(ours.encode(text, { allowedSpecial: 'all' }), ref.encode(text, 'all'));
    assert.deepEqual(ours.encode(text, { allowedSpecial: new Set(['<|endoftext|>']) }), ref.encode(text, ['<|endoftext|>'], []));
    assert.equal(ours.decode(ours.encode(text, { allowedSpecial: 'all' })), text);
  });
}

test('pre-tokenisation patterns split like the patterns stored in the js-tiktoken rank files', () => {
  const text = mixedText(300_000, 3);
  for (const [name, ours] of [['cl100k_base', CL100K_PATTERN], ['o200k_base', O200K_PATTERN]] as const) {
    const file = readTiktokenRanks(name).filePattern;
    const ref = Array.from(text.matchAll(new RegExp(file, 'gu')), (m) => m[0]);
    assert.deepEqual(new PreTokenizer(ours).split(text), ref, name);
  }
});

test('Lumen special tokens that the encoding lacks get ids after its own', () => {
  const [tok] = both('cl100k_base');
  assert.equal(tok.specialTokenId('<|endoftext|>'), 100257);
  const pad = tok.specialTokenId('<|pad|>');
  assert.ok(pad > 100276);
  assert.equal(tok.vocabSize, tok.specialTokenId('<|image|>') + 1);
  assert.equal(tok.decode([tok.specialTokenId('<|user|>')]), '<|user|>');
  assert.throws(() => tok.specialTokenId('<|nope|>'), /not in tokenizer/);
});
