/**
 * The study report: the prediction file (timestamped, written before the target runs), the
 * charts (SVG + PNG via src/plot) and a markdown report that shows the fits, their intervals,
 * the frontier, every run, and — after `verify` — predicted against actual.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { lineChart, writeChart, type Series } from '../plot/index.ts';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.ts';
import { InputError } from '../util/errors.ts';
import { capabilityPoints, type Predicted, type StudyFit } from './analyze.ts';
import { capabilityLaw, meanNegLogPass } from './capability.ts';
import { chinchillaLaw, computeLaw } from './powerlaw.ts';
import { byBudget } from './frontier.ts';
import { fmtFlops, type SweepPlan } from './plan.ts';
import type { RunRecord } from './run.ts';
import { studyPaths, type Prediction, type Verification } from './study.ts';
import type { FitResult } from './fit.ts';
import type { BootstrapResult } from './bootstrap.ts';

/** Builds the prediction from a fit. `targetDone` marks a prediction written after the target ran. */
export function makePrediction(plan: SweepPlan, records: RunRecord[], fit: StudyFit, opts: { targetDone: boolean; now?: Date }): Prediction {
  const maxSweepFlops = Math.max(...records.map((r) => r.C));
  return {
    madeAt: (opts.now ?? new Date()).toISOString(), madeAfterTarget: opts.targetDone,
    targetFlops: plan.targetFlops, target: fit.target, targetNote: fit.targetNote,
    sweepRuns: records.length, maxSweepFlops, maxFraction: maxSweepFlops / fit.target.flops,
    loss: fit.predictions.loss, lossNd: fit.predictions.lossNd, negLogPass: fit.predictions.negLogPass, passRate: fit.predictions.passRate,
    capabilityProblems: fit.capability.ok ? fit.capability.params.problems : null,
    synthetic: records.some((r) => r.synthetic === true),
  };
}

/**
 * Writes prediction.json. Refuses to replace an existing prediction once the target has run
 * (that would turn a prediction into a post-hoc fit) unless `force`, which marks it madeAfterTarget.
 */
export function writePrediction(dir: string, p: Prediction, force = false): void {
  const paths = studyPaths(dir);
  if (p.madeAfterTarget && existsSync(paths.prediction) && !force)
    throw new InputError(`${paths.target} already holds the target run, so a new fit would not be a prediction; ${paths.prediction} is kept. Use --force to overwrite (it will be marked madeAfterTarget).`);
  writeJsonAtomic(paths.prediction, p);
}

function logGrid(lo: number, hi: number, n = 60): number[] {
  return [...Array(n)].map((_, i) => lo * Math.pow(hi / lo, i / (n - 1)));
}

const fmt = (v: number | null | undefined, d = 4) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(d));
const fmtPred = (p: Predicted, d = 4) => (p.value === null ? `failed: ${p.reason}` : `${fmt(p.value, d)}${p.ci ? ` (95% CI ${fmt(p.ci.lo, d)} – ${fmt(p.ci.hi, d)})` : ''}`);

/** Draws every chart of the study; returns the written paths by chart name. */
export async function writePlots(dir: string, plan: SweepPlan, records: RunRecord[], fit: StudyFit, targetRecord?: RunRecord): Promise<Record<string, { svg: string; png: string }>> {
  const out: Record<string, { svg: string; png: string }> = {};
  const plots = studyPaths(dir).plots;
  const tC = fit.target.flops;
  const minC = Math.min(...records.map((r) => r.C));

  // 1. Loss against compute: runs, frontier, L(C) fit extrapolated to the target.
  const s1: Series[] = [
    { name: 'sweep runs', x: records.map((r) => r.C), y: records.map((r) => r.finalValLoss), style: 'points', color: '#999999' },
    { name: 'frontier (fitted)', x: fit.frontierUsed.map((i) => fit.frontier[i]!.C), y: fit.frontierUsed.map((i) => fit.frontier[i]!.L), style: 'points' },
  ];
  const unused = fit.frontier.filter((_, i) => !fit.frontierUsed.includes(i));
  if (unused.length) s1.push({ name: 'frontier (not bracketed, left out)', x: unused.map((p) => p.C), y: unused.map((p) => p.L), style: 'points', color: '#882255' });
  const ann: { x: number; y: number; text: string }[] = [];
  if (fit.computeLaw.ok) {
    const law = fit.computeLaw.params;
    const g = logGrid(minC, tC * 1.2);
    s1.push({ name: `L(C) = ${fmt(law.a, 3)}·C^${fmt(law.b, 4)} + ${fmt(law.c, 3)}`, x: g, y: g.map((c) => computeLaw(law, c)), style: 'line' });
    const p = fit.predictions.loss;
    if (p.value !== null) {
      const ci = p.ci;
      s1.push({ name: 'predicted target (95% CI)', x: [tC], y: [p.value], style: 'points', ...(ci ? { yErr: [Math.max(p.value - ci.lo, ci.hi - p.value)] } : {}) });
      ann.push({ x: tC, y: p.value, text: `predicted ${fmt(p.value, 3)}` });
    }
  }
  if (targetRecord) s1.push({ name: 'target (actual)', x: [targetRecord.C], y: [targetRecord.finalValLoss], style: 'points', color: '#000000' });
  out['loss-vs-compute'] = await writeChart(join(plots, 'loss-vs-compute'), lineChart({ title: 'Final validation loss vs training compute', xLabel: 'training compute C (FLOPs)', yLabel: 'final validation loss (nats/token)', xLog: true, series: s1, annotations: ann }));

  // 2. Iso-FLOP profiles.
  const s2: Series[] = byBudget(records).map((g) => {
    const rs = [...g].sort((a, b) => a.N - b.N);
    return { name: `C = ${fmtFlops(g[0]!.budget)}`, x: rs.map((r) => r.N), y: rs.map((r) => r.finalValLoss), style: 'line+points' as const };
  });
  s2.push({ name: 'frontier', x: fit.frontier.map((p) => p.N), y: fit.frontier.map((p) => p.L), style: 'points', color: '#000000' });
  out['isoflop'] = await writeChart(join(plots, 'isoflop'), lineChart({ title: 'Iso-FLOP profiles', xLabel: 'non-embedding parameters N', yLabel: 'final validation loss', xLog: true, series: s2 }));

  // 3. Compute-optimal model size.
  if (fit.nOpt) {
    const g = logGrid(minC, tC * 1.2);
    const s3: Series[] = [
      { name: 'frontier N_opt', x: fit.frontier.map((p) => p.C), y: fit.frontier.map((p) => p.N), style: 'points' },
      { name: `N_opt = ${fmt(fit.nOpt.g, 3)}·C^${fmt(fit.nOpt.h, 3)}`, x: g, y: g.map((c) => fit.nOpt!.g * Math.pow(c, fit.nOpt!.h)), style: 'line' },
      { name: `target (width ${fit.target.width})`, x: [tC], y: [fit.target.params], style: 'points', color: '#000000' },
    ];
    out['n-opt'] = await writeChart(join(plots, 'n-opt'), lineChart({ title: 'Compute-optimal model size', xLabel: 'training compute C (FLOPs)', yLabel: 'non-embedding parameters N', xLog: true, yLog: true, series: s3 }));
  }

  // 4. L(N, D) fitted vs observed.
  if (fit.chinchilla.ok) {
    const law = fit.chinchilla.params;
    const pts = records.map((r) => ({ x: chinchillaLaw(law, r.N, r.D), y: r.finalValLoss }));
    const s4: Series[] = [{ name: 'sweep runs', x: pts.map((p) => p.x), y: pts.map((p) => p.y), style: 'points' }];
    if (targetRecord) s4.push({ name: 'target', x: [chinchillaLaw(law, targetRecord.N, targetRecord.D)], y: [targetRecord.finalValLoss], style: 'points', color: '#000000' });
    out['loss-nd'] = await writeChart(join(plots, 'loss-nd'), lineChart({ title: 'L(N, D) = E + A/N^α + B/D^β: fitted vs observed', xLabel: 'fitted loss', yLabel: 'observed loss', diagonal: true, series: s4 }));
  }

  // 5. Capability.
  if (fit.capability.ok) {
    const cap = fit.capability.params;
    const runs = fit.capabilityRunIds.map((id) => records.find((r) => r.id === id)!).filter(Boolean);
    const pts = capabilityPoints(runs);
    const y = pts.map((p) => meanNegLogPass(p.perProblemPass, cap.problems));
    const keep = y.map((v, i) => i).filter((i) => y[i]! > 0);
    const g = logGrid(minC, tC * 1.2);
    const s5: Series[] = [
      { name: 'best run per budget', x: keep.map((i) => pts[i]!.C), y: keep.map((i) => y[i]!), style: 'points' },
      { name: `−E[log p] = ${fmt(cap.alpha, 3)}·C^−${fmt(cap.k, 3)}`, x: g, y: g.map((c) => capabilityLaw(cap, c)), style: 'line' },
    ];
    const ann5: { x: number; y: number; text: string }[] = [];
    const p = fit.predictions.negLogPass;
    if (p.value !== null) ann5.push({ x: tC, y: p.value, text: `predicted pass rate ${fmt(fit.predictions.passRate.value, 3)}` });
    if (targetRecord?.perProblemPass) {
      const ya = meanNegLogPass(targetRecord.perProblemPass, cap.problems, 1e-3);
      if (ya > 0) s5.push({ name: 'target (actual)', x: [targetRecord.C], y: [ya], style: 'points', color: '#000000' });
    }
    out['capability'] = await writeChart(join(plots, 'capability'), lineChart({ title: 'Capability: −mean log pass rate vs compute', xLabel: 'training compute C (FLOPs)', yLabel: '−E[log pass rate]', xLog: true, yLog: true, series: s5, annotations: ann5 }));
  }
  return out;
}

function ciCell(ci: FitResult<BootstrapResult<string>> | null, key: string, d = 4): string {
  if (!ci) return '—';
  if (!ci.ok) return `bootstrap failed: ${ci.reason}`;
  const iv = ci.params.intervals[key];
  return iv ? `${fmt(iv.lo, d)} – ${fmt(iv.hi, d)}` : '—';
}

function fitSection<P extends object>(title: string, f: FitResult<P>, ci: FitResult<BootstrapResult<string>> | null, keys: (keyof P & string)[]): string[] {
  const lines = [`### ${title}`, ''];
  if (!f.ok) return [...lines, `**Fit failed:** ${f.reason}`, ''];
  lines.push('| parameter | value | 95% bootstrap CI |', '|---|---|---|');
  for (const k of keys) lines.push(`| ${k} | ${fmt((f.params as Record<string, number>)[k])} | ${ciCell(ci, k)} |`);
  lines.push('', `${f.n} points, RMS log residual ${fmt(f.rmsLogResidual, 5)}, ${f.iterations} LM iterations.${ci && ci.ok ? ` Bootstrap: ${ci.params.succeeded}/${ci.params.samples} refits succeeded (seed ${ci.params.seed}).` : ''}`);
  for (const n of f.notes) lines.push(`- note: ${n}`);
  lines.push('');
  return lines;
}

/** The markdown report. */
export function reportMarkdown(plan: SweepPlan, records: RunRecord[], fit: StudyFit, pred: Prediction, plots: Record<string, { svg: string; png: string }>, ver?: Verification): string {
  const L: string[] = [`# Scaling study: target ${fmtFlops(plan.targetFlops)} FLOPs`, ''];
  if (pred.synthetic) L.push('> **Synthetic:** these results come from the synthetic trainer (a known law plus noise), not from training.', '');
  L.push(`Prediction made at **${pred.madeAt}**${pred.madeAfterTarget ? ' — **after** the target run finished, so it is not a true prediction' : ', before the target run'}.`, '');
  L.push(`Sweep: ${records.length} runs over ${fit.frontier.length} compute budgets, ${fmtFlops(Math.min(...records.map((r) => r.C)))} – ${fmtFlops(pred.maxSweepFlops)} FLOPs (largest = 1/${fmt(1 / pred.maxFraction, 0)} of the target). Shape rule: ${plan.shapeRule}.`, '');
  L.push(`Target run: width ${fit.target.width}, ${fit.target.depth} layers, ${fit.target.heads} heads, N = ${fit.target.params} non-embedding parameters (${fit.target.paramsTotal} total), ${fit.target.tokens} tokens, ${fmtFlops(fit.target.flops)} FLOPs. ${fit.targetNote}.`, '');
  L.push('## Predictions', '', '| quantity | predicted | actual | relative error |', '|---|---|---|---|');
  const act = (v: number | undefined | null, d = 4) => (ver ? fmt(v ?? null, d) : 'not yet run');
  const err = (v: number | null | undefined) => (ver ? (v === null || v === undefined ? '—' : `${v.toFixed(2)}%`) : '—');
  L.push(`| final loss, L(C) on the frontier | ${fmtPred(pred.loss)} | ${act(ver?.loss.actual)} | ${err(ver?.loss.relErrorPct)} |`);
  L.push(`| final loss, L(N, D) | ${fmtPred(pred.lossNd)} | ${act(ver?.lossNd.actual)} | ${err(ver?.lossNd.relErrorPct)} |`);
  const yAct = ver ? -Math.log(ver.passRate.actual) : null;
  const yErr = yAct !== null && yAct > 0 && pred.negLogPass.value !== null ? (Math.abs(pred.negLogPass.value - yAct) / yAct) * 100 : null;
  L.push(`| −E[log pass rate] | ${fmtPred(pred.negLogPass)} | ${act(yAct)} | ${err(yErr)} |`);
  L.push(`| pass rate (geometric mean over kept problems) | ${fmtPred(pred.passRate)} | ${act(ver?.passRate.actual)} | ${err(ver?.passRate.relErrorPct)} |`);
  L.push('');
  if (ver) {
    L.push(`Verified at ${ver.verifiedAt}; target started at ${ver.targetStartedAt} (${ver.predictionBeforeTarget ? 'after' : '**before**'} the prediction).`);
    if (ver.loss.withinCI !== null) L.push(`The actual loss is ${ver.loss.withinCI ? 'inside' : '**outside**'} the 95% bootstrap interval of the L(C) prediction.`);
    if (ver.passRate.floored > 0) L.push(`${ver.passRate.floored} kept problem(s) had a target pass rate below ${ver.passRate.floor} and were counted at that floor.`);
    L.push('');
  }
  L.push('## Fits', '');
  L.push(...fitSection('L(C) = a·C^b + c (compute-optimal frontier)', fit.computeLaw, fit.computeLawCI, ['a', 'b', 'c']));
  L.push(...fitSection('L(N, D) = E + A/N^α + B/D^β (all runs)', fit.chinchilla, fit.chinchillaCI, ['E', 'A', 'alpha', 'B', 'beta']));
  L.push(...fitSection('−E[log pass_rate(C)] = α·C^(−k) (best run per budget)', fit.capability, fit.capabilityCI, ['alpha', 'k']));
  L.push(fit.nOpt ? `Compute-optimal size: N_opt(C) = ${fmt(fit.nOpt.g, 4)}·C^${fmt(fit.nOpt.h, 4)}.` : 'N_opt(C) could not be fitted.', '');
  if (fit.rangeCheck) {
    const rc = fit.rangeCheck;
    L.push('### Range check: L(C) refitted without the lowest budgets', '', '| fitted from budget | points | predicted final loss |', '|---|---|---|');
    for (const r of rc.rows) L.push(`| ${fmtFlops(r.fromBudget)} | ${r.points} | ${r.prediction === null ? `failed: ${r.reason}` : fmt(r.prediction)} |`);
    L.push('', rc.spreadPct === null ? 'Too few successful refits to measure a spread.'
      : `Spread of these predictions: ${rc.spreadPct.toFixed(1)}% of their median. ${rc.spreadPct > 2 ? '**The frontier does not follow one power law over the sweep**: the prediction depends on the range fitted, so it cannot be trusted to better than about this spread, whatever its bootstrap interval.' : 'The law is stable over the range fitted.'}`, '');
  }
  L.push('## Frontier', '', '| budget | C used | loss | N_opt | D_opt | method | runs | optimum bracketed | in L(C) fit |', '|---|---|---|---|---|---|---|---|---|');
  fit.frontier.forEach((p, i) => L.push(`| ${fmtFlops(p.budget)} | ${fmtFlops(p.C)} | ${fmt(p.L)} | ${Math.round(p.N)} | ${Math.round(p.D)} | ${p.method} | ${p.runs} | ${p.bracketed ? 'yes' : 'no'} | ${fit.frontierUsed.includes(i) ? 'yes' : 'no'} |`));
  if (fit.frontierNote) L.push('', `Note: ${fit.frontierNote}.`);
  L.push('', '## Charts', '');
  for (const [name, p] of Object.entries(plots)) L.push(`![${name}](plots/${name}.png)`, '');
  L.push('## Runs', '', '| id | width | depth | N | D | C | loss | pass rate | seconds |', '|---|---|---|---|---|---|---|---|---|');
  for (const r of records) L.push(`| ${r.id} | ${r.width} | ${r.depth} | ${r.N} | ${r.D} | ${fmtFlops(r.C)} | ${fmt(r.finalValLoss)} | ${fmt(r.passRate, 3)} | ${r.seconds.toFixed(1)} |`);
  L.push('', '## Method', '',
    '- L(C): variable projection (grid over b, non-negative linear solve for a, c with relative weights) for a start, then Levenberg–Marquardt on the Huber loss (δ = 0.003) of log residuals; c is kept in [0, min L).',
    '- L(N, D): grid over (α, β) with (E, A, B) solved non-negatively at each node; the best starts refined by LM on the Huber loss of log residuals.',
    '- Frontier: per budget, the vertex of a parabola of loss against ln N when it lies inside the sizes run, else the best run.',
    '- Capability: problems every sweep model solves at least once; −mean log pass rate fitted as a power law of compute.',
    '- Intervals: percentile bootstrap (runs resampled within budgets for the loss laws; problems resampled for capability).', '');
  return L.join('\n');
}

/** Writes plots and report.md; returns the report path and plot paths. */
export async function writeReport(dir: string, plan: SweepPlan, records: RunRecord[], fit: StudyFit, pred: Prediction, ver?: Verification, targetRecord?: RunRecord): Promise<{ report: string; plots: Record<string, { svg: string; png: string }> }> {
  const plots = await writePlots(dir, plan, records, fit, targetRecord);
  const md = reportMarkdown(plan, records, fit, pred, plots, ver);
  const report = studyPaths(dir).report;
  writeFileAtomic(report, md + '\n');
  return { report, plots };
}
