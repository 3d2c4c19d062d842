/**
 * The resumable sweep runner. Each finished run is appended to a JSONL results file as one
 * complete line, written with a single write and fsynced, so a sweep killed at any moment loses
 * at most the run in progress. On restart, runs already in the file are skipped, and a last line
 * cut short by the kill is dropped (the file is truncated back to its last complete line before
 * anything new is appended).
 *
 * The trainer is injected: `train(run)` trains one planned run and reports its final validation
 * loss (on held-out data), pass rate and the tokens and FLOPs it actually used. The CLI passes
 * the real trainer (trainer-bridge.ts); tests pass a synthetic one that follows a known law.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputError, LumenError } from '../util/errors.ts';
import { Progress } from '../util/progress.ts';
import type { PlannedRun } from './plan.ts';

/** What a trainer reports for one finished run. `perProblemPass` holds per-problem pass rates for the capability fit, same problem order in every run. */
export interface TrainOutcome { finalValLoss: number; passRate: number; perProblemPass?: number[]; tokens: number; flops: number; seconds: number; }

/** Trains one planned run. */
export type TrainFn = (run: PlannedRun) => Promise<TrainOutcome>;

/** One line of the results file: the plan's view of the run plus what training measured. N = non-embedding params, D = tokens trained, C = FLOPs used. */
export interface RunRecord {
  id: string; budget: number; width: number; depth: number; heads: number;
  plannedTokens: number; plannedFlops: number;
  N: number; paramsTotal: number; D: number; C: number;
  finalValLoss: number; passRate: number; perProblemPass?: number[];
  seconds: number; startedAt: string; finishedAt: string;
  /** The run's learning-rate override, for LR sweeps. */
  lr?: number;
  /** Set when the outcome came from the synthetic trainer, not real training. */
  synthetic?: boolean;
}

/** Checks a trainer's outcome, naming the run and the bad field. */
export function checkOutcome(run: PlannedRun, o: TrainOutcome): void {
  const bad = (what: string) => { throw new LumenError(`run ${run.id}: trainer returned ${what}`); };
  if (!o || typeof o !== 'object') bad(`${String(o)} instead of an outcome object`);
  if (!(Number.isFinite(o.finalValLoss) && o.finalValLoss > 0)) bad(`finalValLoss ${o.finalValLoss} (expected a finite loss > 0)`);
  if (!(o.passRate >= 0 && o.passRate <= 1)) bad(`passRate ${o.passRate} (expected a number in [0, 1])`);
  if (!(Number.isFinite(o.tokens) && o.tokens > 0)) bad(`tokens ${o.tokens} (expected > 0)`);
  if (!(Number.isFinite(o.flops) && o.flops > 0)) bad(`flops ${o.flops} (expected > 0)`);
  if (!(Number.isFinite(o.seconds) && o.seconds >= 0)) bad(`seconds ${o.seconds} (expected >= 0)`);
  if (o.perProblemPass !== undefined) {
    if (!Array.isArray(o.perProblemPass)) bad('perProblemPass that is not an array');
    o.perProblemPass.forEach((p, j) => { if (!(p >= 0 && p <= 1)) bad(`perProblemPass[${j}] = ${p} (expected a number in [0, 1])`); });
  }
}

/** Reads a results file: complete records, and whether the last line was cut short. Throws InputError (with the line number) on a corrupt line that is not the last. */
export function readResults(path: string): { records: RunRecord[]; truncatedTail: boolean; validBytes: number } {
  if (!existsSync(path)) return { records: [], truncatedTail: false, validBytes: 0 };
  const text = readFileSync(path, 'utf8');
  const records: RunRecord[] = [];
  let pos = 0, line = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    line++;
    const end = nl === -1 ? text.length : nl;
    const raw = text.slice(pos, end);
    const last = nl === -1 || text.slice(nl + 1).trim() === '';
    if (raw.trim() !== '') {
      let rec: RunRecord | null = null;
      try { rec = JSON.parse(raw) as RunRecord; } catch { rec = null; }
      const valid = rec !== null && typeof rec.id === 'string' && Number.isFinite(rec.finalValLoss);
      if (!valid || nl === -1) {
        // An unterminated or unparsable last line is the trace of a kill mid-write.
        if (last) return { records, truncatedTail: true, validBytes: Buffer.byteLength(text.slice(0, pos)) };
        throw new InputError(`${path}: line ${line} is not a valid result record: ${JSON.stringify(raw.slice(0, 80))}`);
      }
      records.push(rec!);
    }
    if (nl === -1) break;
    pos = nl + 1;
  }
  return { records, truncatedTail: false, validBytes: Buffer.byteLength(text) };
}

/** Appends one record as a single complete line and fsyncs it. */
export function appendRecord(path: string, rec: RunRecord): void {
  mkdirSync(dirname(path), { recursive: true });
  const buf = Buffer.from(JSON.stringify(rec) + '\n', 'utf8');
  const fd = openSync(path, 'a');
  try {
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Takes `<results>.lock` (holding our pid) so two sweeps never append to the same file. A lock
 * left by a process that no longer exists (a killed sweep) is taken over. Returns the release function.
 */
export function lockResults(resultsPath: string): () => void {
  const lock = `${resultsPath}.lock`;
  mkdirSync(dirname(lock), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => { try { unlinkSync(lock); } catch { /* already gone */ } };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(lock, 'utf8').trim());
      let alive = false;
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
        try { process.kill(pid, 0); alive = true; } catch (k) { alive = (k as NodeJS.ErrnoException).code === 'EPERM'; }
      }
      if (alive || pid === process.pid) throw new InputError(`${resultsPath} is being written by another sweep (pid ${pid}, lock ${lock}); wait for it or stop it first`);
      try { unlinkSync(lock); } catch { /* raced with another taker */ }
    }
  }
  throw new InputError(`could not take the lock ${lock}`);
}

/** Options of {@link runSweep}. */
export interface RunSweepOptions {
  train: TrainFn;
  resultsPath: string;
  /** Called after each finished run. */
  onRun?: (rec: RunRecord, done: number, total: number) => void;
  /** Mark records as synthetic (outcomes from the synthetic trainer). */
  synthetic?: boolean;
  quiet?: boolean;
}

/**
 * Runs every planned run that is not yet in the results file, in plan order, appending each
 * result as it finishes. Returns all records for the plan (old and new). A trainer error stops
 * the sweep (re-running resumes at the failed run); it is rethrown naming the run.
 */
export async function runSweep(plan: { runs: PlannedRun[] } | PlannedRun[], opts: RunSweepOptions): Promise<{ records: RunRecord[]; ran: number; skipped: number }> {
  const runs = Array.isArray(plan) ? plan : plan.runs;
  const ids = new Set<string>();
  for (const r of runs) { if (ids.has(r.id)) throw new InputError(`plan has two runs with id '${r.id}'`); ids.add(r.id); }
  const release = lockResults(opts.resultsPath);
  try {
    const prior = readResults(opts.resultsPath);
    if (prior.truncatedTail) truncateSync(opts.resultsPath, prior.validBytes);
    const done = new Map<string, RunRecord>();
    for (const rec of prior.records) {
      const run = runs.find((r) => r.id === rec.id);
      if (run && (run.width !== rec.width || run.depth !== rec.depth || run.tokens !== rec.plannedTokens || run.lr !== rec.lr))
        throw new InputError(`${opts.resultsPath}: run '${rec.id}' was recorded with width ${rec.width}, depth ${rec.depth}, ${rec.plannedTokens} tokens but the plan says width ${run.width}, depth ${run.depth}, ${run.tokens} tokens; the results belong to a different plan`);
      done.set(rec.id, rec);
    }
    const todo = runs.filter((r) => !done.has(r.id));
    const bar = new Progress({ label: 'sweep', total: Math.max(1, todo.length), unit: 'run', quiet: (opts.quiet ?? false) || todo.length === 0 });
    let ran = 0;
    for (const run of todo) {
      const startedAt = new Date().toISOString();
      let out: TrainOutcome;
      try {
        out = await opts.train(run);
      } catch (e) {
        bar.done();
        throw new LumenError(`run ${run.id} (width ${run.width}, ${run.tokens} tokens) failed: ${(e as Error).message}. Re-run to resume from this run.`);
      }
      checkOutcome(run, out);
      const rec: RunRecord = {
        id: run.id, budget: run.budget, width: run.width, depth: run.depth, heads: run.heads,
        plannedTokens: run.tokens, plannedFlops: run.flops,
        N: run.params, paramsTotal: run.paramsTotal, D: out.tokens, C: out.flops,
        finalValLoss: out.finalValLoss, passRate: out.passRate,
        ...(out.perProblemPass ? { perProblemPass: out.perProblemPass } : {}),
        seconds: out.seconds, startedAt, finishedAt: new Date().toISOString(),
        ...(run.lr !== undefined ? { lr: run.lr } : {}),
        ...(opts.synthetic ? { synthetic: true } : {}),
      };
      appendRecord(opts.resultsPath, rec);
      done.set(rec.id, rec);
      ran++;
      bar.update(ran, { run: run.id, loss: Number(rec.finalValLoss.toFixed(4)) });
      opts.onRun?.(rec, done.size, runs.length);
    }
    bar.done();
    return { records: runs.map((r) => done.get(r.id)).filter((r): r is RunRecord => r !== undefined), ran, skipped: runs.length - todo.length };
  } finally {
    release();
  }
}
