/**
 * kill -9 at any moment leaves the previous good checkpoint loadable, and --resume then finishes
 * with exactly the losses of an uninterrupted run — including a kill in the middle of writing a
 * checkpoint (after the temporary file, before the rename).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn, spawnSync } from 'node:child_process';
import { trainBpe } from '../../src/tokenizer/train.ts';
import { prepareShards } from '../../src/data/shards.ts';
import { loadModel } from '../../src/train/checkpoint.ts';
import { fixtureText } from '../fixtures/char-encoder.ts';

const LUMEN = join(process.cwd(), 'bin', 'lumen.mjs');

async function makeData(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-crash-'));
  const files = Array.from({ length: 10 }, (_, i) => { const f = join(dir, `d${i}.txt`); writeFileSync(f, fixtureText(i + 1, 300)); return f; });
  const tok = await trainBpe({ inputs: files, vocabSize: 300, progress: false });
  const data = join(dir, 'data');
  prepareShards({ files, tokenizer: tok, outDir: data, valPercent: 20, quiet: true });
  tok.save(data);
  return data;
}

const ARGS = (data: string, out: string) => ['train', '--config', 'tiny', '--data', data, '--out', out, '--no-sample',
  '--set', 'steps=24', '--set', 'checkpointEvery=3', '--set', 'logEvery=1', '--set', 'evalEvery=6', '--set', 'batchSize=2',
  '--set', 'model.contextLength=32', '--set', 'model.width=32', '--set', 'model.layers=1'];

const ENV = { ...process.env, LUMEN_QUIET: '1', LUMEN_QUIET_BACKEND: '1' };

function losses(out: string): { step: number; loss: number; val_loss?: number }[] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

/** Starts a run and SIGKILLs it after `ms`. */
function killAfter(args: string[], ms: number, env: NodeJS.ProcessEnv = ENV): Promise<void> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [LUMEN, ...args], { env, stdio: 'ignore' });
    const t = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('exit', () => { clearTimeout(t); resolve(); });
  });
}

test('kill -9 at random moments and inside a checkpoint write, then resume: same losses bit for bit', { timeout: 180_000 }, async () => {
  const data = await makeData();
  const full = mkdtempSync(join(tmpdir(), 'lumen-full-'));
  const r = spawnSync(process.execPath, [LUMEN, ...ARGS(data, full)], { env: ENV, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const want = losses(full);
  assert.equal(want.length, 24);

  const out = mkdtempSync(join(tmpdir(), 'lumen-killed-'));
  // 1) a kill in the middle of writing the second state checkpoint (step 6)
  await killAfter(ARGS(data, out), 60_000, { ...ENV, LUMEN_CRASH_BEFORE_RENAME: 'state.safetensors', LUMEN_CRASH_COUNTDOWN: '2' });
  assert.ok(readdirSync(out).some((f) => f.endsWith('.tmp')), 'the crash left a temporary file behind');
  assert.equal(losses(out).at(-1)!.step, 6, 'the run died while checkpointing step 6');
  loadModel(out); // the previous good checkpoint (step 3) still loads
  // 2) kills at arbitrary moments of resumed runs
  for (const ms of [700, 1000]) await killAfter([...ARGS(data, out), '--resume'], ms);
  // 3) finish
  const fin = spawnSync(process.execPath, [LUMEN, ...ARGS(data, out), '--resume'], { env: ENV, encoding: 'utf8' });
  assert.equal(fin.status, 0, fin.stderr);
  const got = losses(out);
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.equal(got[i]!.step, want[i]!.step);
    assert.equal(got[i]!.loss, want[i]!.loss, `step ${want[i]!.step}`);
    assert.equal(got[i]!.val_loss, want[i]!.val_loss);
  }
});
