#!/usr/bin/env node
// Runs the whole test suite: a type check, then every test/**/*.test.ts through node:test.
// Usage: npm test [-- <substring filter of test file paths>]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
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
const r = spawnSync(process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${conc}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', env: { ...process.env, LUMEN_QUIET_BACKEND: '1' } });
process.exit(r.status ?? 1);
