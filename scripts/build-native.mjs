#!/usr/bin/env node
// Builds the native kernel addon (native/ -> native/build/Release/lumen_native.node) with node-gyp.
// Run by `npm ci` / `npm install` (package.json "install"). It never fails the install: when the
// build is impossible (no compiler, no headers, ...) it prints one line and exits 0, and Lumen
// then runs on the reference backend.
//
// ISA: on x86-64 hosts whose CPU has AVX2 and FMA the kernels are compiled with -mavx2 -mfma
// (gyp variable lumen_isa=avx2); elsewhere with the baseline flags (NEON is baseline on arm64).
// The GEMM's AVX2 and AVX-512 microkernels are chosen at run time in any case.
// Set LUMEN_NATIVE_ISA=generic to force the portable build, LUMEN_SKIP_NATIVE=1 to skip it.
//
// The build runs in a staging copy (native/build-staging) and the finished addon is renamed onto
// native/build/Release/lumen_native.node, so a rebuild never leaves a Lumen process that starts
// meanwhile without an addon, and a failed or killed rebuild keeps the previous addon.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const verbose = process.env.LUMEN_NATIVE_VERBOSE === '1';

function say(line) { console.log(`lumen: ${line}`); }

function hostIsa() {
  if (process.env.LUMEN_NATIVE_ISA) return process.env.LUMEN_NATIVE_ISA;
  if (process.arch !== 'x64') return 'generic';
  try {
    const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].split(/\s+/) ?? [];
    return flags.includes('avx2') && flags.includes('fma') ? 'avx2' : 'generic';
  } catch {
    return 'generic';  // not Linux: portable build; the GEMM still dispatches at run time
  }
}

/** node-gyp's entry script: the one npm runs us with, else npm's bundled copy, else a local one. */
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const prefix = dirname(dirname(process.execPath));
  candidates.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(prefix, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  try { candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js')); } catch { /* not installed */ }
  return candidates.find((p) => existsSync(p)) ?? null;
}

function main() {
  if (process.env.LUMEN_SKIP_NATIVE === '1') { say('native build skipped (LUMEN_SKIP_NATIVE=1); using the reference backend'); return; }
  const gyp = findNodeGyp();
  if (!gyp) { say('native addon not built: node-gyp not found (npm ships it); using the reference backend'); return; }
  const isa = hostIsa();
  const staging = join(nativeDir, 'build-staging');
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  cpSync(join(nativeDir, 'binding.gyp'), join(staging, 'binding.gyp'));
  cpSync(join(nativeDir, 'src'), join(staging, 'src'), { recursive: true });
  const args = [gyp, 'rebuild', `--directory=${staging}`];
  // Headers: node-gyp uses npm_config_nodedir when set (e.g. nodedir=/usr in ~/.npmrc); otherwise use the
  // headers installed next to this node binary, if any, so the build works offline; else node-gyp downloads them.
  const prefix = dirname(dirname(process.execPath));
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  args.push('--', `-Dlumen_isa=${isa}`);
  const r = spawnSync(process.execPath, args, { cwd: staging, encoding: 'utf8', env: process.env });
  const built = join(staging, 'build', 'Release', 'lumen_native.node');
  const target = join(nativeDir, 'build', 'Release', 'lumen_native.node');
  const kept = existsSync(target) ? ' (the previous addon stays in place)' : '';
  const ok = r.status === 0 && existsSync(built);
  if (ok) {
    mkdirSync(dirname(target), { recursive: true });
    renameSync(built, target);   // atomic: a process loading the addon sees the old file or the new one
  }
  rmSync(staging, { recursive: true, force: true });
  if (!ok) {
    const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}${r.status === 0 ? '\nerror: node-gyp reported success but wrote no lumen_native.node' : ''}`;
    if (verbose) process.stderr.write(out);
    const lines = out.split('\n').map((l) => l.trim());
    const firstError = lines.find((l) => /\berror:/i.test(l)) ?? lines.find((l) => /ERR! stack Error/.test(l))
      ?? lines.find((l) => /ERR!/.test(l)) ?? `node-gyp exit ${r.status}`;
    say(`native addon build failed (${firstError.slice(0, 160)})${kept || '; using the reference backend'} (LUMEN_NATIVE_VERBOSE=1 shows the log)`);
    return;
  }
  if (verbose) process.stdout.write(r.stdout ?? '');
  say(`native addon built (${isa === 'avx2' ? 'avx2+fma' : 'portable'} build): native/build/Release/lumen_native.node`);
}

try { main(); } catch (e) { say(`native addon not built (${e instanceof Error ? e.message : String(e)}); using the reference backend`); }
process.exit(0);
