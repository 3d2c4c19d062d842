#!/usr/bin/env node
// Runs the whole test suite: a type check, then every test/**/*.test.ts through node:test.
// Usage: npm test [-- <substring filter of test file paths>]
// The tests' temporary directories go into one directory of this run (TMPDIR), removed when
// every test passed and kept, with its path printed, when one failed (LUMEN_KEEP_TEST_TMP=1: always kept).
import { readdirSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';

const filters = process.argv.slice(2);
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const files = walk('test').filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) { console.error('no test files matched'); process.exit(1); }

if (filters.length === 0) {
  const tc = spawnSync('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit'], { stdio: 'inherit' });
  if (tc.status !== 0) { console.error('type check failed'); process.exit(tc.status ?? 1); }
}
const conc = process.env.LUMEN_TEST_CONCURRENCY ?? '2';
const tmp = mkdtempSync(join(tmpdir(), 'lumen-test-'));
const r = spawnSync(process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${conc}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', env: { ...process.env, LUMEN_QUIET_BACKEND: '1', TMPDIR: tmp } });
if (r.status === 0 && process.env.LUMEN_KEEP_TEST_TMP !== '1') rmSync(tmp, { recursive: true, force: true });
else console.error(`the tests' temporary files are in ${tmp}`);
process.exit(r.status ?? 1);
