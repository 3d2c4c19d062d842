/**
 * One evaluation run end to end: every task against one model, then the contamination check,
 * calibration and the report card. The `lumen eval` command is a thin shell around `runEval`.
 */
import { join } from 'node:path';
import { calibration, writeReliabilityDiagram, type Calibration } from './calibration.ts';
import { checkContamination, openIndex } from './contamination.ts';
import { itemText } from './item.ts';
import type { EvalModel } from './model.ts';
import { evalJson, markdownReport, textTable, writeReport, type ContaminationSummary, type EvalJson, type TaskReport } from './report.ts';
import { computeMetrics, evaluateTask } from './scoring.ts';
import type { TaskSpec } from './task.ts';

/** Settings of a run. */
export interface RunOptions {
  tasks: TaskSpec[];
  model: EvalModel;
  /** Output folder; nothing is written without it. */
  out?: string;
  limit?: number;
  bootstrap?: number;
  /** Training corpus (files, folders, globs) for the contamination check. */
  corpus?: string[];
  /** Where the corpus index is saved and reused. */
  indexDir?: string;
  /** Seed of the contamination substring sampling. */
  seed?: number;
  quiet?: boolean;
}

/** Everything a run produced. */
export interface RunResult {
  reports: TaskReport[];
  calibration: Calibration | null;
  json: EvalJson;
  table: string;
  markdown: string;
}

/** Runs the tasks, checks contamination, measures calibration and writes the report card. */
export async function runEval(o: RunOptions): Promise<RunResult> {
  const reports: TaskReport[] = [];
  for (const task of o.tasks) {
    const result = await evaluateTask(task, o.model, { limit: o.limit, bootstrap: o.bootstrap, quiet: o.quiet });
    reports.push({ result });
  }
  let summary: ContaminationSummary | null = null;
  if (o.corpus && o.corpus.length > 0) {
    const t0 = performance.now();
    const { index, built } = openIndex(o.corpus, o.indexDir, { quiet: o.quiet });
    for (const [ti, r] of reports.entries()) {
      r.flagged = checkContamination(r.result.items.map((it) => ({ id: it.id, text: itemText(it) })), index, o.seed ?? 0);
      r.clean = computeMetrics(o.tasks[ti]!, r.result.outcomes.filter((_, i) => !r.flagged![i]), o.bootstrap);
    }
    summary = {
      corpusFiles: index.meta.files.length, corpusBytes: index.meta.files.reduce((a, f) => a + f.size, 0),
      normalisedBytes: index.meta.normBytes, indexBuilt: built, seconds: (performance.now() - t0) / 1000,
    };
  }
  const mc = reports.flatMap((r) => r.result.outcomes.filter((x) => x.confidence !== undefined));
  const cal = mc.length > 0 ? calibration(mc.map((x) => x.confidence!), mc.map((x) => x.correct)) : null;
  let plot: string | null = null;
  if (o.out && cal) {
    await writeReliabilityDiagram(join(o.out, 'calibration'), cal);
    plot = 'calibration';
  }
  const json = o.out ? writeReport(o.out, o.model.name, reports, cal, plot, summary) : evalJson(reports, cal);
  return { reports, calibration: cal, json, table: textTable(reports), markdown: markdownReport(o.model.name, reports, cal, plot, summary) };
}
