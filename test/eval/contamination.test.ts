import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tempFiles } from './helpers.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { buildIndex, checkContamination, openIndex, sampleSubstrings, loadIndex, saveIndex } from '../../src/eval/contamination.ts';
import { normaliseText, ByteNormaliser } from '../../src/eval/normalise.ts';

const WORDS = ['river', 'stone', 'Ärger', 'light', 'seven', '42', 'over', 'the', 'naïve', 'cloud', 'iron', 'blue'];
function prose(seed: number, words: number): string {
  const r = new Rng(seed);
  let s = '';
  for (let i = 0; i < words; i++) s += WORDS[r.int(WORDS.length)] + (r.int(7) === 0 ? '. ' : r.int(5) === 0 ? ', ' : ' ');
  return s;
}

test('normalisation keeps letters and digits, lower-cased; string and byte versions agree', () => {
  assert.equal(normaliseText('The cat, 2 MATS!  Ärger—naïve?'), 'thecat2matsärgernaïve');
  const text = prose(1, 3000) + ' Straße ΣΊΣΥΦΟΣ 東京 🙂 x²';
  const n = new ByteNormaliser(10);
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i += 7) n.push(bytes.subarray(i, i + 7)); // splits multi-byte characters across chunks
  assert.equal(Buffer.from(n.bytes()).toString('utf8'), normaliseText(text));
});

test('substring sampling: 3 seeded 50-character pieces, or the whole item when shorter', () => {
  const long = prose(2, 100);
  const s = sampleSubstrings(long, 'item-1', 0);
  assert.equal(s.length, 3);
  assert.ok(s.every((x) => Array.from(x).length === 50 && normaliseText(long).includes(x)));
  assert.deepEqual(sampleSubstrings(long, 'item-1', 0), s);
  assert.notDeepEqual(sampleSubstrings(long, 'item-2', 0), s);
  assert.deepEqual(sampleSubstrings('What is 2 + 2?', 'q', 0), ['whatis22']);
  assert.deepEqual(sampleSubstrings('?!', 'q', 0), []);
});

test('planted items are flagged, others are not; the index is saved and reused until the corpus changes', () => {
  const corpusA = prose(3, 20000), corpusB = prose(4, 20000);
  const planted = [
    { id: 'p-long', text: corpusA.slice(5000, 5400) },                       // copied verbatim
    { id: 'p-reformatted', text: corpusB.slice(9000, 9300).toUpperCase().replace(/ /g, '  ').replace(/,/g, ';') }, // spacing, case, symbols differ
    { id: 'p-short', text: corpusA.slice(100, 125) },                          // shorter than 50 normalised characters
  ];
  const clean = [
    { id: 'c-long', text: prose(99, 80) },
    { id: 'c-short', text: 'zebra quantum xylophone' },
    { id: 'c-mix', text: 'Nothing like this appears: ' + 'qqq '.repeat(30) },
  ];
  const t = tempFiles({ 'corpus/a.txt': corpusA, 'corpus/sub/b.txt': corpusB, 'other.md': 'x' });
  try {
    const idxDir = t.path('idx');
    const first = openIndex([t.path('corpus')], idxDir, { quiet: true });
    assert.equal(first.built, true);
    assert.equal(first.index.meta.files.length, 2);
    const items = [...planted, ...clean];
    assert.deepEqual(checkContamination(items, first.index), [true, true, true, false, false, false]);
    // Brute force agrees for every sampled substring.
    const normCorpus = Buffer.from(first.index.corpus).toString('utf8');
    for (const it of items) {
      const expect = sampleSubstrings(it.text, it.id).some((s) => normCorpus.includes(s));
      assert.equal(checkContamination([it], first.index)[0], expect, it.id);
    }
    const second = openIndex([t.path('corpus/**/*.txt')], idxDir, { quiet: true });
    assert.equal(second.built, false);
    assert.deepEqual(checkContamination(items, second.index), [true, true, true, false, false, false]);
    writeFileSync(t.path('corpus/a.txt'), corpusA.slice(0, 1000));
    const third = openIndex([t.path('corpus')], idxDir, { quiet: true });
    assert.equal(third.built, true);
    assert.deepEqual(checkContamination(items.slice(0, 2), third.index), [false, true]);
    // Save/load round trip keeps every array.
    const idx = buildIndex([t.path('corpus/sub/b.txt')], { quiet: true });
    saveIndex(t.path('idx2'), idx);
    const back = loadIndex(t.path('idx2'));
    assert.deepEqual([back.bits, back.hashes, back.positions, back.offsets, Buffer.from(back.corpus)], [idx.bits, idx.hashes, idx.positions, idx.offsets, Buffer.from(idx.corpus)]);
  } finally { t.cleanup(); }
});

test('random queries agree with a brute-force substring search', () => {
  const t = tempFiles({ 'c.txt': prose(7, 30000) });
  try {
    const idx = buildIndex([t.path('c.txt')], { quiet: true });
    const text = Buffer.from(idx.corpus).toString('latin1');
    const r = new Rng(8);
    const queries: Uint8Array[] = [];
    for (let i = 0; i < 600; i++) {
      const len = [3, 20, 49, 50, 64, 120][i % 6]!;
      const q = Buffer.alloc(len);
      if (i % 2) { const st = r.int(idx.corpus.length - len); q.set(idx.corpus.subarray(st, st + len)); } else for (let j = 0; j < len; j++) q[j] = 97 + r.int(26);
      queries.push(new Uint8Array(q));
    }
    const got = idx.containsAll(queries);
    const want = queries.map((q) => text.includes(Buffer.from(q).toString('latin1')));
    assert.deepEqual(got, want);
    assert.ok(want.filter(Boolean).length >= 300);
  } finally { t.cleanup(); }
});

