/**
 * Training: equal to a naive reference BPE (recount every pair at every step, same tie rule),
 * deterministic, special tokens at the last ids, streams as inputs, chunked reading equal to
 * whole-text counting, save -> load round trip, and the bad-input errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, existsSync, rmSync, mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Tokenizer, trainBpe, learnMerges, CL100K_PATTERN, SPECIAL_TOKENS } from '../../src/tokenizer/index.ts';
import { WordCounter, countWords } from '../../src/tokenizer/count.ts';
import { InputError } from '../../src/util/errors.ts';
import { proseText, sourceText } from './mixed-text.ts';

const dir = mkdtempSync(join(tmpdir(), 'lumen-tok-train-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const corpus = sourceText(150_000) + proseText(30_000, 3);
const fileA = join(dir, 'a.txt');
const fileB = join(dir, 'b.md');
writeFileSync(fileA, corpus.slice(0, 100_000));
writeFileSync(fileB, corpus.slice(100_000));

/** Textbook BPE: recount all pairs each step; highest count, then smallest (left, right). */
function naiveMerges(counts: Map<string, number>, n: number): Array<[number, number]> {
  const words = [...counts].map(([w, c]) => ({ s: Array.from(new TextEncoder().encode(w)), c }));
  const out: Array<[number, number]> = [];
  while (out.length < n) {
    const pc = new Map<string, number>();
    for (const { s, c } of words) for (let i = 0; i + 1 < s.length; i++) { const k = `${s[i]},${s[i + 1]}`; pc.set(k, (pc.get(k) ?? 0) + c); }
    let best: [number, number] | null = null, bc = 0;
    for (const [k, c] of pc) {
      const [a, b] = k.split(',').map(Number) as [number, number];
      if (c > bc || (c === bc && best && (a < best[0] || (a === best[0] && b < best[1])))) { best = [a, b]; bc = c; }
    }
    if (!best) break;
    const id = 256 + out.length;
    out.push(best);
    for (const w of words) {
      const t: number[] = [];
      for (let i = 0; i < w.s.length; i++) {
        if (i + 1 < w.s.length && w.s[i] === best[0] && w.s[i + 1] === best[1]) { t.push(id); i++; } else t.push(w.s[i]!);
      }
      w.s = t;
    }
  }
  return out;
}

test('merges equal a naive reference BPE (incremental pair counts are exact)', () => {
  const wc = new WordCounter(CL100K_PATTERN);
  wc.addText(corpus.slice(0, 40_000) + ' aaaa aaaaaaa abababab aaabaaab');
  assert.deepEqual(learnMerges(wc.counts, 300), naiveMerges(wc.counts, 300));
});

test('training is deterministic, puts special tokens at the last ids and reproduces its words', async () => {
  const t1 = await trainBpe({ inputs: [join(dir, '*.{txt,md}')], vocabSize: 1200, progress: false });
  const t2 = await trainBpe({ inputs: [fileB, fileA], vocabSize: 1200, progress: false });
  assert.deepEqual(t1.data.merges, t2.data.merges);
  assert.equal(t1.vocabSize, 1200);
  SPECIAL_TOKENS.forEach((s, i) => assert.equal(t1.specialTokenId(s), 1200 - SPECIAL_TOKENS.length + i));
  const sample = corpus.slice(5000, 15000);
  const ids = t1.encode(sample);
  assert.equal(t1.decode(ids), sample);
  assert.ok(ids.length < new TextEncoder().encode(sample).length * 0.5, 'merges compress the training text');
  assert.equal(t1.encode('<|endoftext|>').includes(t1.specialTokenId('<|endoftext|>')), false);
});

test('streamed and chunked input count exactly like whole text', async () => {
  const whole = new WordCounter(CL100K_PATTERN);
  whole.addText(corpus);
  const streamed = new WordCounter(CL100K_PATTERN);
  // Odd chunk sizes cut words and multi-byte characters anywhere.
  const bytes = Buffer.from(corpus);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 777) chunks.push(bytes.subarray(i, i + 777));
  await streamed.addStream(Readable.from(chunks), 'test');
  assert.deepEqual([...streamed.counts].sort(), [...whole.counts].sort());
  const fromStream = await trainBpe({ inputs: [Readable.from(chunks)], vocabSize: 800, progress: false });
  const whole1 = join(dir, 'whole.txt');
  writeFileSync(whole1, corpus);
  const fromFiles = await trainBpe({ inputs: [whole1], vocabSize: 800, progress: false });
  rmSync(whole1);
  assert.deepEqual(fromStream.data.merges, fromFiles.data.merges);
});

test('counting in worker threads gives the same table as one thread', async () => {
  const one = await countWords([fileA, fileB], CL100K_PATTERN, { threads: 1 });
  const two = await countWords([fileA, fileB], CL100K_PATTERN, { threads: 2, parallelMinBytes: 0 });
  assert.equal(two.bytes, one.bytes);
  assert.deepEqual([...two.counts].sort(), [...one.counts].sort());
  await assert.rejects(countWords([fileA, join(dir, 'sub-missing', 'x.txt')], CL100K_PATTERN, { threads: 2, parallelMinBytes: 0 }), /cannot be read/);
});

test('a trained tokenizer round-trips through tokenizer.json (o200k pattern too)', async () => {
  for (const pattern of ['cl100k', 'o200k']) {
    const t = await trainBpe({ inputs: [fileA], vocabSize: 700, pattern, progress: false });
    const out = join(dir, `saved-${pattern}`);
    t.save(out);
    const back = Tokenizer.load(out);
    assert.deepEqual(back.data.merges, t.data.merges);
    assert.equal(back.vocabSize, t.vocabSize);
    assert.equal(back.data.pattern, t.data.pattern);
    const text = corpus.slice(20_000, 40_000) + '<|user|>';
    assert.deepEqual(back.encode(text), t.encode(text));
    assert.deepEqual(back.encode(text, { allowedSpecial: 'all' }), t.encode(text, { allowedSpecial: 'all' }));
  }
});

test('bad input: vocab too small, empty corpus, missing and unreadable files, globs that match nothing', async () => {
  await assert.rejects(trainBpe({ inputs: [fileA], vocabSize: 262, progress: false }), /vocabSize: expected an integer >= 263/);
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '');
  await assert.rejects(trainBpe({ inputs: [empty], vocabSize: 300, progress: false }), (e: Error) => e instanceof InputError && /corpus is empty/.test(e.message));
  await assert.rejects(trainBpe({ inputs: [join(dir, 'nope.txt')], vocabSize: 300, progress: false }), /nope\.txt' cannot be read \(ENOENT\)/);
  await assert.rejects(trainBpe({ inputs: [join(dir, '*.csv')], vocabSize: 300, progress: false }), /matches no file/);
  await assert.rejects(trainBpe({ inputs: [], vocabSize: 300, progress: false }), /at least one/);
  const sub = join(dir, 'sub');
  mkdirSync(sub);
  await assert.rejects(trainBpe({ inputs: [sub], vocabSize: 300, progress: false }), /directory '.*sub' holds no files/);
  await assert.rejects(trainBpe({ inputs: [join(fileA, 'inside.txt')], vocabSize: 300, progress: false }), /a\.txt\/inside\.txt' cannot be read \(ENOTDIR\)/);
  if (process.getuid?.() !== 0) { // root reads anything
    const locked = join(dir, 'locked.txt');
    writeFileSync(locked, 'secret');
    chmodSync(locked, 0o000);
    await assert.rejects(trainBpe({ inputs: [locked], vocabSize: 300, progress: false }), /locked\.txt.*EACCES/);
  }
  assert.equal(existsSync(join(dir, 'tokenizer.json')), false);
});
