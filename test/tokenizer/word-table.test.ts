/** The typed-array word table behind the encoder: lookups by string range, bounded cache. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashRange, WordTable } from '../../src/tokenizer/word-table.ts';

test('finds words by range, keeps frozen entries and drops cached ones when full', () => {
  const t = new WordTable(8, 64, 64);
  const text = 'hello world hello';
  t.insert('hello', 0, 5, hashRange('hello', 0, 5), [7], 1);
  t.freeze();
  const e = t.find(text, 12, 17, hashRange(text, 12, 17));
  assert.ok(e >= 0);
  assert.deepEqual(t.ids(e), [7]);
  assert.equal(t.find(text, 5, 11, hashRange(text, 5, 11)), -1);
  const w = t.insert(text, 5, 11, hashRange(text, 5, 11), [1, 2, 3], 3);
  assert.deepEqual(t.ids(w), [1, 2, 3]);
  // Fill past the entry limit: the cache is dropped, the frozen word stays.
  for (let i = 0; i < 20; i++) { const s = `w${i}`; t.insert(s, 0, s.length, hashRange(s, 0, s.length), [i], 1); }
  assert.ok(t.size <= 8);
  assert.ok(t.find('hello', 0, 5, hashRange('hello', 0, 5)) >= 0);
  assert.equal(t.find(text, 5, 11, hashRange(text, 5, 11)), -1, 'cached entry dropped');
  const last = t.find('w19', 0, 3, hashRange('w19', 0, 3));
  assert.deepEqual(t.ids(last), [19]);
  // Same hash, different text: compared code unit by code unit.
  assert.equal(t.find('hellp', 0, 5, hashRange('hello', 0, 5)), -1);
  // A word larger than the pools is refused (the encoder then pushes ids without caching).
  assert.equal(t.insert('x'.repeat(100), 0, 100, 1, [1], 1), -1);
});
