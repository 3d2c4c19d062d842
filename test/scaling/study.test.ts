import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { run as scale } from '../../src/cli/commands/scale.ts';
import { planSweep } from '../../src/scaling/plan.ts';
import { runSweep } from '../../src/scaling/run.ts';
import { syntheticTrainer, SYNTHETIC_DEFAULTS } from '../../src/scaling/synthetic.ts';
import { fitStudy } from '../../src/scaling/analyze.ts';
import { chinchillaLaw } from '../../src/scaling/powerlaw.ts';
import { benchRows, verifyStudy } from '../../src/scaling/verify.ts';
import { studyPaths, type Prediction, type Verification } from '../../src/scaling/study.ts';
import { writeJsonAtomic } from '../../src/util/fs.ts';

/** Runs the CLI with console output captured. */
async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => { lines.push(a.join(' ')); };
  try {
    return { code: await scale(args), out: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

test('the whole study through the CLI with the synthetic trainer: plan → run → fit → verify', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-study-'));
  try {
    const p = studyPaths(dir);
    assert.equal((await cli(['plan', '--target-flops', '1e14', '--out', dir])).code, 0);
    assert.ok(existsSync(p.plan));
    const r = await cli(['run', '--plan', dir, '--synthetic', '--quiet']);
    assert.equal(r.code, 0);
    assert.match(r.out, /run\(s\) trained, 0 already done/);
    const f = await cli(['fit', '--dir', dir, '--bootstrap', '60']);
    assert.equal(f.code, 0, f.out);
    const pred = JSON.parse(readFileSync(p.prediction, 'utf8')) as Prediction;
    assert.ok(pred.loss.value !== null && pred.passRate.value !== null);
    assert.equal(pred.madeAfterTarget, false);
    assert.equal(pred.synthetic, true);
    assert.ok(pred.maxFraction <= 1.001e-3, `largest sweep run is ${pred.maxFraction} of the target`);

    const v = await cli(['verify', '--dir', dir, '--synthetic', '--quiet']);
    assert.equal(v.code, 0, v.out);
    assert.match(v.out, /no bench results written/);
    const ver = JSON.parse(readFileSync(p.verification, 'utf8')) as Verification;
    assert.ok(ver.predictionBeforeTarget, 'the prediction was written before the target started');
    assert.ok(Date.parse(ver.predictionMadeAt) <= Date.parse(ver.targetStartedAt));
    // The synthetic world follows the law exactly up to 0.3% noise: the 1000x extrapolation lands within 5%.
    assert.ok(ver.loss.relErrorPct! < 5, `loss error ${ver.loss.relErrorPct}%`);
    assert.ok(ver.passRate.relErrorPct! < 15, `pass-rate error ${ver.passRate.relErrorPct}%`);
    const truth = chinchillaLaw(SYNTHETIC_DEFAULTS.law, pred.target.params, pred.target.tokens);
    assert.ok(Math.abs(ver.loss.actual / truth - 1) < 0.02, 'actual target loss comes from the synthetic law');

    const md = readFileSync(p.report, 'utf8');
    assert.match(md, /Prediction made at \*\*\d{4}-\d\d-\d\dT/);
    assert.match(md, /Synthetic/);
    assert.match(md, /\| final loss, L\(C\) on the frontier \| \d/);
    for (const name of ['loss-vs-compute', 'isoflop', 'n-opt', 'loss-nd', 'capability']) {
      const png = join(p.plots, `${name}.png`);
      assert.ok(existsSync(join(p.plots, `${name}.svg`)) && existsSync(png), name);
      assert.equal((await sharp(readFileSync(png)).metadata()).width, 1440);
    }

    // Re-fitting after the target ran would not be a prediction: refused without --force.
    await assert.rejects(cli(['fit', '--dir', dir, '--bootstrap', '0']), /would not be a prediction/);
    const forced = await cli(['fit', '--dir', dir, '--bootstrap', '0', '--force']);
    assert.equal(forced.code, 0);
    assert.equal((JSON.parse(readFileSync(p.prediction, 'utf8')) as Prediction).madeAfterTarget, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verify writes bench rows in the agreed format; synthetic studies refuse to', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-study-'));
  try {
    const plan = planSweep({ targetFlops: 1e13, budgetsPerDecade: 3, modelsPerBudget: 3 });
    const p = studyPaths(dir);
    writeJsonAtomic(p.plan, plan);
    // A trainer that is not flagged synthetic stands in for the real one here.
    const train = syntheticTrainer({ seed: 3 });
    const { records } = await runSweep(plan, { train, resultsPath: p.results, quiet: true });
    const fit = fitStudy(plan, records, { bootstrapSamples: 40 });
    const { makePrediction, writePrediction } = await import('../../src/scaling/report.ts');
    writePrediction(dir, makePrediction(plan, records, fit, { targetDone: false }));
    writeJsonAtomic(p.fit, fit);
    const benchOut = join(dir, 'bench', 'scaling.json');
    const { rows } = await verifyStudy(dir, { train, benchOut, quiet: true });
    const bench = JSON.parse(readFileSync(benchOut, 'utf8')) as { bench: string; rows: typeof rows };
    assert.equal(bench.bench, 'scaling');
    assert.deepEqual(bench.rows.map((r) => [r.case, r.unit, r.peer, r.peer_value]), [
      ['loss prediction', 'relative error %', 'goal 1%', 1],
      ['pass-rate prediction', 'relative error %', 'goal 10%', 10],
      ['loss prediction, L(N, D)', 'relative error %', 'goal 1%', 1],
    ]);
    const loss = bench.rows[0]!;
    assert.ok(loss.lumen! >= 0 && Math.abs(loss.ratio! - 1 / Math.max(loss.lumen!, 0.01)) < 1e-3);

    await assert.rejects(verifyStudy(dir, { train, benchOut, synthetic: true, quiet: true }), /never written to bench results/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('benchRows reports a failed prediction as null with the reason, not as a number', () => {
  const ver = { loss: { relErrorPct: null }, passRate: { relErrorPct: 4 }, lossNd: { relErrorPct: 0.5 } } as unknown as Verification;
  const rows = benchRows(ver);
  assert.equal(rows[0]!.lumen, null);
  assert.match(rows[0]!.note!, /fit failed/);
  assert.equal(rows[1]!.ratio, 2.5);
});

test('a sweep too small to fit gives failed predictions with reasons, and fit exits non-zero', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-study-'));
  try {
    const plan = planSweep({ targetFlops: 1e14, budgetsPerDecade: 1, modelsPerBudget: 1 });
    const p = studyPaths(dir);
    writeJsonAtomic(p.plan, plan);
    await runSweep(plan, { train: syntheticTrainer(), resultsPath: p.results, quiet: true, synthetic: true });
    const f = await cli(['fit', '--dir', dir, '--bootstrap', '20']);
    assert.equal(f.code, 1);
    assert.match(f.out, /final loss, L\(C\) frontier\s+FAILED: too few points/);
    assert.match(f.out, /L\(N, D\)\s+FAILED: too few points/);
    const md = readFileSync(p.report, 'utf8');
    assert.match(md, /\*\*Fit failed:\*\* too few points/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the scale command rejects unknown subcommands and missing options clearly', async () => {
  await assert.rejects(cli(['nope']), /unknown subcommand 'nope'/);
  await assert.rejects(cli(['plan']), /--target-flops is required/);
  await assert.rejects(cli(['plan', '--target-flops', 'lots']), /--target-flops: expected a number, got 'lots'/);
  await assert.rejects(cli(['fit', '--dir', '/nonexistent/study']), /plan.json does not exist; run 'lumen scale plan/);
  await assert.rejects(cli(['run', '--plan', '/x', '--bogus']), /Unknown option '--bogus'/);
});

test('scale lr runs a resumable LR sweep at three widths and reports whether the optimum transfers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-lr-'));
  try {
    const args = ['lr', '--out', dir, '--widths', '32,64,128', '--lrs', '1e-3,3e-3,1e-2,3e-2,1e-1', '--tokens', '65536', '--synthetic', '--quiet'];
    const r = await cli(args);
    assert.equal(r.code, 0);
    assert.match(r.out, /optimum moves ×\d\.\d\d across a ×4 width range: transfers/);
    const t = JSON.parse(readFileSync(join(dir, 'lr-transfer.json'), 'utf8')) as { optima: { width: number; lr: number }[]; shift: number; results: unknown[] };
    assert.equal(t.results.length, 15);
    // the synthetic optimum is 0.01 at every width
    for (const o of t.optima) assert.ok(Math.abs(Math.log(o.lr / 0.01)) < Math.log(1.5), `width ${o.width}: ${o.lr}`);
    assert.ok(existsSync(join(dir, 'plots', 'lr-sweep.png')));
    // a second call finds every run done
    const lines = readFileSync(join(dir, 'lr-results.jsonl'), 'utf8').trimEnd().split('\n').length;
    await cli(args);
    assert.equal(readFileSync(join(dir, 'lr-results.jsonl'), 'utf8').trimEnd().split('\n').length, lines);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('plan --recipe stores the shared recipe in the plan; a bad recipe is a clear error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-study-'));
  try {
    const recipe = join(dir, 'recipe.json');
    writeJsonAtomic(recipe, { lr: 0.01, batchTokens: 4096 });
    assert.equal((await cli(['plan', '--target-flops', '1e13', '--out', dir, '--recipe', recipe])).code, 0);
    assert.deepEqual((JSON.parse(readFileSync(studyPaths(dir).plan, 'utf8')) as { recipe: unknown }).recipe, { lr: 0.01, batchTokens: 4096 });
    writeJsonAtomic(recipe, [1, 2]);
    await assert.rejects(cli(['plan', '--target-flops', '1e13', '--out', dir, '--recipe', recipe]), /must hold a JSON object, got an array/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a hand-edited plan with an invalid model config is rejected naming the run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-study-'));
  try {
    const plan = planSweep({ targetFlops: 1e13 });
    plan.runs[1]!.config.heads = 3; // width 16 is not divisible by 3 heads
    writeJsonAtomic(studyPaths(dir).plan, plan);
    await assert.rejects(cli(['run', '--plan', dir, '--synthetic', '--quiet']), new RegExp(`run ${plan.runs[1]!.id}: invalid model config.*divisible by heads 3`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
