/**
 * The report card: a terminal table, `report.md` (one table, one calibration plot, one
 * contamination summary) and `eval.json`:
 *
 *   {"tasks": {"<task>": {"metric", "score", "stderr", "n", "clean_score"}}, "calibration": {"ece"}}
 *
 * `metric`/`score`/`stderr` are the task's first (headline) metric; `clean_score` is that metric
 * on the items the contamination check did not flag (null when no check ran or every item was
 * flagged); `ece` is null when no multiple-choice task ran.
 */
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.ts';
import type { Calibration } from './calibration.ts';
import type { MetricValue, TaskResult } from './scoring.ts';

/** One task's results, with the contamination check's view of it. */
export interface TaskReport {
  result: TaskResult;
  /** Per item: flagged as seen in training? Absent when no check ran. */
  flagged?: boolean[];
  /** Metrics on the clean (unflagged) items; absent when no check ran. */
  clean?: MetricValue[];
}

/** The shape of eval.json. */
export interface EvalJson {
  tasks: Record<string, { metric: string; score: number | null; stderr: number | null; n: number; clean_score: number | null }>;
  calibration: { ece: number | null };
}

const fin = (x: number | undefined): number | null => (x !== undefined && Number.isFinite(x) ? x : null);

/** Builds eval.json's object. */
export function evalJson(reports: TaskReport[], cal: Calibration | null): EvalJson {
  const tasks: EvalJson['tasks'] = {};
  for (const r of reports) {
    const m = r.result.metrics[0]!;
    tasks[r.result.task] = { metric: m.name, score: fin(m.score), stderr: fin(m.stderr), n: r.result.outcomes.length, clean_score: fin(r.clean?.[0]?.score) };
  }
  return { tasks, calibration: { ece: cal ? fin(cal.ece) : null } };
}

function fmt(m: MetricValue | undefined): string {
  if (!m || !Number.isFinite(m.score)) return '—';
  return m.name === 'percentile' ? `${m.score.toFixed(1)} ± ${m.stderr.toFixed(1)}` : `${(100 * m.score).toFixed(1)}% ± ${(100 * m.stderr).toFixed(1)}`;
}

interface Row { task: string; mode: string; metric: string; score: string; clean: string; n: string; flagged: string }

function rows(reports: TaskReport[]): Row[] {
  const out: Row[] = [];
  for (const r of reports) {
    const flagged = r.flagged ? r.flagged.filter(Boolean).length : undefined;
    const n = r.result.outcomes.length;
    r.result.metrics.forEach((m, i) => out.push({
      task: i === 0 ? r.result.task : '', mode: i === 0 ? r.result.mode : '', metric: m.name, score: fmt(m),
      clean: r.clean ? fmt(r.clean[i]) : 'not checked', n: i === 0 ? String(n) : '',
      flagged: i === 0 ? (flagged === undefined ? '—' : `${flagged} (${(100 * flagged / Math.max(1, n)).toFixed(1)}%)`) : '',
    }));
  }
  return out;
}

const HEAD: Row = { task: 'task', mode: 'mode', metric: 'metric', score: 'score ± stderr', clean: 'clean subset', n: 'n', flagged: 'contaminated' };

/** The results as an aligned plain-text table. */
export function textTable(reports: TaskReport[]): string {
  const all = [HEAD, ...rows(reports)];
  const keys = Object.keys(HEAD) as (keyof Row)[];
  const w = keys.map((k) => Math.max(...all.map((r) => r[k].length)));
  const line = (r: Row) => keys.map((k, i) => (k === 'n' ? r[k].padStart(w[i]!) : r[k].padEnd(w[i]!))).join('  ').trimEnd();
  return [line(all[0]!), w.map((x) => '-'.repeat(x)).join('  '), ...all.slice(1).map(line)].join('\n');
}

/** Contamination facts for the summary. */
export interface ContaminationSummary {
  corpusFiles: number;
  corpusBytes: number;
  normalisedBytes: number;
  indexBuilt: boolean;
  seconds: number;
}

function size(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : bytes >= 1e3 ? `${(bytes / 1e3).toFixed(1)} kB` : `${bytes} B`;
}

/** report.md text. `plot` is the reliability diagram's file name (relative to the report), if drawn. */
export function markdownReport(model: string, reports: TaskReport[], cal: Calibration | null, plot: string | null, contamination: ContaminationSummary | null): string {
  const md: string[] = [`# Evaluation report: ${model}`, '', `${new Date().toISOString().slice(0, 19).replace('T', ' ')} UTC · ${reports.length} task(s) · standard errors by bootstrap (1000 resamples)`, ''];
  md.push('| task | mode | metric | score ± stderr | clean subset | n | contaminated |', '|---|---|---|---:|---:|---:|---:|');
  for (const r of rows(reports)) md.push(`| ${r.task} | ${r.mode} | ${r.metric} | ${r.score} | ${r.clean} | ${r.n} | ${r.flagged} |`);
  md.push('', '## Calibration', '');
  if (cal && plot) {
    md.push(`Expected calibration error over ${cal.n} multiple-choice answers: **${(100 * cal.ece).toFixed(1)}%** (10 equal-width confidence bins; confidence = softmax probability of the chosen answer).`, '', `![reliability diagram](${plot}.svg)`);
  } else md.push('No multiple-choice (loglikelihood) task ran, so there is no calibration measurement.');
  md.push('', '## Contamination', '');
  if (contamination) {
    const flagged = reports.reduce((a, r) => a + (r.flagged?.filter(Boolean).length ?? 0), 0);
    const n = reports.reduce((a, r) => a + r.result.outcomes.length, 0);
    md.push(`${flagged} of ${n} items (${(100 * flagged / Math.max(1, n)).toFixed(1)}%) had a sampled 50-character substring (spaces and symbols removed) in the training corpus ` +
      `(${contamination.corpusFiles} file(s), ${size(contamination.corpusBytes)} raw, ${size(contamination.normalisedBytes)} normalised; index ${contamination.indexBuilt ? 'built' : 'reused'}; check took ${contamination.seconds.toFixed(1)} s). ` +
      'The table\'s "clean subset" column scores only the unflagged items.');
  } else md.push('Not checked (pass --contamination-corpus to compare the items with the training text).');
  return md.join('\n') + '\n';
}

/** Writes eval.json, report.md and one JSONL of per-item outcomes per task into `dir`. */
export function writeReport(dir: string, model: string, reports: TaskReport[], cal: Calibration | null, plot: string | null, contamination: ContaminationSummary | null): EvalJson {
  const json = evalJson(reports, cal);
  for (const r of reports) {
    const lines = r.result.outcomes.map((o, i) => JSON.stringify({ ...o, question: r.result.items[i]!.question, answer: r.result.items[i]!.answer, contaminated: r.flagged?.[i] }));
    writeFileAtomic(join(dir, 'items', `${r.result.task}.jsonl`), lines.join('\n') + '\n');
  }
  writeFileAtomic(join(dir, 'report.md'), markdownReport(model, reports, cal, plot, contamination));
  writeJsonAtomic(join(dir, 'eval.json'), json);
  return json;
}
