/** Input expansion shared by every corpus reader: paths, directories and globs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { expandInputs, globToRegExp } from '../../src/io/files.ts';

const dir = mkdtempSync(join(tmpdir(), 'lumen-files-'));

test('globs: *, **, ?, [a-z], [!x] and {a,b}; sorted and de-duplicated', () => {
  const g = join(dir, 'globs');
  mkdirSync(join(g, 'deep', 'er'), { recursive: true });
  for (const f of ['a1.txt', 'b2.txt', 'c3.md', 'deep/d4.txt', 'deep/er/e5.txt']) writeFileSync(join(g, f), 'x');
  const names = (pats: string[]): string[] => expandInputs(pats).map((p) => p.slice(p.indexOf('/globs/') + 7));
  assert.deepEqual(names([join(g, '*.txt')]), ['a1.txt', 'b2.txt']);
  assert.deepEqual(names([join(g, '**/*.txt')]), ['a1.txt', 'b2.txt', 'deep/d4.txt', 'deep/er/e5.txt']);
  assert.deepEqual(names([join(g, '[a-b]?.txt'), join(g, 'a1.txt')]), ['a1.txt', 'b2.txt']);
  assert.deepEqual(names([join(g, '[!a]*.{txt,md}')]), ['b2.txt', 'c3.md']);
});

test('globs and corpus paths', () => {
  assert.ok(globToRegExp('/a/**/*.txt').test('/a/b/c/d.txt'));
  assert.ok(globToRegExp('/a/**/*.txt').test('/a/d.txt'));
  assert.ok(!globToRegExp('/a/*.txt').test('/a/b/d.txt'));
  assert.throws(() => expandInputs(['/nonexistent/x.txt']), /'\/nonexistent\/x\.txt' cannot be read \(ENOENT\)/);
  assert.throws(() => expandInputs(['/tmp/*.nothing-matches-this']), /matches no files/);
});

test('a directory means every file below it; an empty one is an error', () => {
  const d = join(dir, 'tree');
  mkdirSync(join(d, 'x', 'y'), { recursive: true });
  writeFileSync(join(d, 'x', 'y', 'f.txt'), 'x');
  writeFileSync(join(d, 'g.md'), 'x');
  assert.deepEqual(expandInputs([d]).map((p) => p.slice(d.length)), ['/g.md', '/x/y/f.txt']);
  mkdirSync(join(dir, 'empty'));
  assert.throws(() => expandInputs([join(dir, 'empty')], 'corpus'), /corpus directory '.*empty' holds no files/);
});
