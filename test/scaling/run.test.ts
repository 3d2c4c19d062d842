import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planSweep } from '../../src/scaling/plan.ts';
import { readResults, runSweep, type TrainFn } from '../../src/scaling/run.ts';
import { syntheticTrainer } from '../../src/scaling/synthetic.ts';
import { InputError } from '../../src/util/errors.ts';

const plan = planSweep({ targetFlops: 1e13, budgetsPerDecade: 2, modelsPerBudget: 3 });

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'lumen-sweep-'));
}

test('runSweep records every run once, and a killed sweep resumes where it stopped', async () => {
  const dir = tmp();
  try {
    const path = join(dir, 'results.jsonl');
    const synth = syntheticTrainer();
    const trained: string[] = [];
    let budget = 4; // the "kill": the trainer dies on the 5th run
    const dying: TrainFn = async (run) => { if (budget-- === 0) throw new Error('killed'); trained.push(run.id); return synth(run); };
    await assert.rejects(runSweep(plan, { train: dying, resultsPath: path, quiet: true }), /run .* failed: killed\. Re-run to resume/);
    assert.equal(readResults(path).records.length, 4);

    const resumed: string[] = [];
    const again: TrainFn = async (run) => { resumed.push(run.id); return synth(run); };
    const r = await runSweep(plan, { train: again, resultsPath: path, quiet: true });
    assert.equal(r.skipped, 4);
    assert.equal(r.ran, plan.runs.length - 4);
    assert.deepEqual(resumed, plan.runs.slice(4).map((x) => x.id), 'continues at the failed run, in plan order');
    assert.deepEqual(r.records.map((x) => x.id), plan.runs.map((x) => x.id));
    // each record carries N, D, C and the measured loss
    for (const rec of r.records) assert.ok(rec.N > 0 && rec.D > 0 && rec.C > 0 && rec.finalValLoss > 0 && rec.startedAt <= rec.finishedAt);
    // a third call has nothing to do
    const none = await runSweep(plan, { train: async () => { throw new Error('should not train'); }, resultsPath: path, quiet: true });
    assert.equal(none.ran, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a truncated last line (kill mid-write) is dropped and the run is redone; the file stays valid JSONL', async () => {
  const dir = tmp();
  try {
    const path = join(dir, 'results.jsonl');
    const synth = syntheticTrainer();
    const first = plan.runs.slice(0, 3);
    await runSweep(first, { train: synth, resultsPath: path, quiet: true });
    appendFileSync(path, '{"id":"' + plan.runs[3]!.id + '","budget":1e9,"wid');
    const read = readResults(path);
    assert.equal(read.records.length, 3);
    assert.equal(read.truncatedTail, true);
    const r = await runSweep(plan.runs.slice(0, 5), { train: synth, resultsPath: path, quiet: true });
    assert.equal(r.ran, 2);
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 5);
    for (const l of lines) JSON.parse(l);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a corrupt line in the middle, results of another plan, and bad trainer output are errors', async () => {
  const dir = tmp();
  try {
    const path = join(dir, 'results.jsonl');
    const synth = syntheticTrainer();
    await runSweep(plan.runs.slice(0, 2), { train: synth, resultsPath: path, quiet: true });
    const good = readFileSync(path, 'utf8');
    writeFileSync(path, 'garbage\n' + good);
    assert.throws(() => readResults(path), (e: Error) => e instanceof InputError && /line 1 is not a valid result record/.test(e.message));

    writeFileSync(path, good);
    const other = plan.runs.map((r) => ({ ...r, tokens: r.tokens + 1 }));
    await assert.rejects(runSweep(other, { train: synth, resultsPath: path, quiet: true }), /belong to a different plan/);

    const nan: TrainFn = async (run) => ({ ...(await synth(run)), finalValLoss: NaN });
    await assert.rejects(runSweep(plan.runs.slice(2, 3), { train: nan, resultsPath: path, quiet: true }), /trainer returned finalValLoss NaN/);
    const dup = [plan.runs[0]!, plan.runs[0]!];
    await assert.rejects(runSweep(dup, { train: synth, resultsPath: join(dir, 'x.jsonl'), quiet: true }), /two runs with id/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a second sweep on the same results file is refused; a stale lock from a killed sweep is taken over', async () => {
  const dir = tmp();
  try {
    const path = join(dir, 'results.jsonl');
    const synth = syntheticTrainer();
    writeFileSync(`${path}.lock`, String(process.ppid)); // a live process holds it
    await assert.rejects(runSweep(plan.runs.slice(0, 1), { train: synth, resultsPath: path, quiet: true }), /being written by another sweep \(pid \d+/);
    writeFileSync(`${path}.lock`, '2147483646'); // no such process: the lock of a killed sweep
    const r = await runSweep(plan.runs.slice(0, 1), { train: synth, resultsPath: path, quiet: true });
    assert.equal(r.ran, 1);
    assert.equal(existsSync(`${path}.lock`), false, 'the lock is released');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
