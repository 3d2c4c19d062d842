/**
 * Runs one task against one model and scores it.
 *
 * - loglikelihood: each choice's continuation is scored as log P(continuation | prompt).
 *   `acc` picks the highest log probability; `acc_norm` divides each by the continuation's
 *   length in characters (UTF-16 code units of the rendered continuation, leading space
 *   included) before picking, so long choices are not penalised for being long. Ties go to the
 *   first choice. The probability of the chosen answer (softmax over the choices' log
 *   probabilities) feeds the calibration report.
 * - generate: greedy (or `scoring.temperature`) generation, then answer extraction (./extract.ts).
 * - cot: an explanation sampled at `cot.temperature` (0.3 by default) after `cot.trigger`; the
 *   answer is extracted from it, or from a second greedy generation after `cot.answer_prompt`.
 *
 * Few-shot examples come from a separate split, chosen per item by a generator seeded with
 * (fewshot.seed, item index), so a rerun shows every item the same examples.
 */
import { hashAt, Rng } from '../tensor/rng.ts';
import { InputError } from '../util/errors.ts';
import { Progress } from '../util/progress.ts';
import type { ChatMessage, ContentPart, EvalModel, GenerateRequest } from './model.ts';
import { labelsOf, type EvalItem } from './item.ts';
import { loadSource, type SourceSpec } from './formats/loaders.ts';
import { fill, itemVars, choiceVars } from './template.ts';
import { extractAndCompare } from './extract.ts';
import { bootstrapStderr, mean } from './stats.ts';
import { rawScore, toPercentile } from './exam.ts';
import type { TaskSpec } from './task.ts';

/** What happened on one item. */
export interface ItemOutcome {
  id: string;
  /** 1 if right (by `acc`), else 0. */
  correct: number;
  /** loglikelihood mode: 1 if right by `acc_norm`. */
  correctNorm?: number;
  /** loglikelihood mode: index of the chosen choice, its softmax probability, the right index. */
  chosen?: number;
  confidence?: number;
  gold?: number;
  /** generate/cot modes: the raw output and what was extracted from it. */
  output?: string;
  prediction?: string | null;
}

/** One metric of a task. */
export interface MetricValue {
  name: 'acc' | 'acc_norm' | 'percentile';
  score: number;
  stderr: number;
}

/** The result of one task. */
export interface TaskResult {
  task: string;
  mode: TaskSpec['scoring']['mode'];
  items: EvalItem[];
  outcomes: ItemOutcome[];
  metrics: MetricValue[];
}

/** Options of a run. */
export interface EvaluateOptions {
  /** Use only the first N items. */
  limit?: number;
  /** Bootstrap resamples for standard errors. */
  bootstrap?: number;
  /** Requests per model call (a progress step). */
  batchSize?: number;
  quiet?: boolean;
}

/** Loads a task's items (first `limit`) and its few-shot pool. */
export async function loadTaskItems(task: TaskSpec, limit?: number): Promise<{ items: EvalItem[]; pool: EvalItem[] }> {
  let items = await loadSource(task.source as SourceSpec, task.baseDir);
  if (limit !== undefined) items = items.slice(0, limit);
  const pool = task.fewshot.k > 0 ? await loadSource(task.fewshot.source as SourceSpec, task.baseDir) : [];
  if (task.fewshot.k > pool.length && task.fewshot.k > 0) throw new InputError(`${task.file}: fewshot.k = ${task.fewshot.k} but the few-shot split holds only ${pool.length} items`);
  if (task.scoring.mode === 'loglikelihood') {
    for (const it of [...items, ...pool]) if (!it.choices || it.gold === undefined)
      throw new InputError(`${task.file}: scoring.mode loglikelihood needs multiple-choice items, but item '${it.id}' has no choices (format ${task.source.format})`);
  }
  return { items, pool };
}

/** The k few-shot example indices for item `index` (distinct, seeded). */
export function fewshotIndices(poolSize: number, k: number, seed: number, index: number): number[] {
  const rng = new Rng(hashAt(seed, index));
  const chosen: number[] = [];
  const seen = new Set<number>();
  while (chosen.length < k) {
    const j = rng.int(poolSize);
    if (!seen.has(j)) { seen.add(j); chosen.push(j); }
  }
  return chosen;
}

/** The full prompt of item `index`: preamble, few-shot examples, then the item's template. */
export function buildPrompt(task: TaskSpec, item: EvalItem, index: number, pool: EvalItem[]): string {
  const p = task.prompt;
  const where = `${task.file}: prompt`;
  const parts: string[] = [];
  for (const j of task.fewshot.k > 0 ? fewshotIndices(pool.length, task.fewshot.k, task.fewshot.seed, index) : []) {
    const ex = pool[j]!;
    const target = task.scoring.mode === 'loglikelihood'
      ? fill(p.continuation, choiceVars(ex, ex.gold!), `${where}.continuation`)
      : fill(p.fewshot_target, itemVars(ex), `${where}.fewshot_target`);
    parts.push(fill(p.template, itemVars(ex), `${where}.template`) + target);
  }
  parts.push(fill(p.template, itemVars(item), `${where}.template`));
  return p.preamble + parts.join(p.separator);
}

/** A generation request for a prompt; items with images become a chat message with image parts. */
function genRequest(item: EvalItem, prompt: string, maxTokens: number, temperature: number, seed: number, stop?: string[]): GenerateRequest {
  if (item.images && item.images.length > 0) {
    const content: ContentPart[] = [...item.images.map((url): ContentPart => ({ type: 'image_url', image_url: { url } })), { type: 'text', text: prompt }];
    return { messages: [{ role: 'user', content }], maxTokens, temperature, seed, stop };
  }
  return { prompt, maxTokens, temperature, seed, stop };
}

/** Calls `fn` on slices of `reqs` with a progress bar. */
async function batched<Q, R>(label: string, reqs: Q[], fn: (b: Q[]) => Promise<R[]>, opts: EvaluateOptions): Promise<R[]> {
  const size = opts.batchSize ?? 256;
  const bar = new Progress({ label, total: reqs.length, unit: 'req', quiet: opts.quiet });
  const out: R[] = [];
  for (let i = 0; i < reqs.length; i += size) {
    const part = reqs.slice(i, i + size);
    const res = await fn(part);
    if (res.length !== part.length) throw new InputError(`${label}: the model returned ${res.length} results for ${part.length} requests`);
    out.push(...res);
    if (out.length < reqs.length) bar.update(out.length);
  }
  bar.done();
  return out;
}

/** Index of the largest value (first on ties). */
function argmax(xs: number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

/** Softmax of log probabilities. */
export function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

async function scoreLoglikelihood(task: TaskSpec, model: EvalModel, items: EvalItem[], pool: EvalItem[], opts: EvaluateOptions): Promise<ItemOutcome[]> {
  if (!model.supportsLoglikelihood) throw new InputError(`task '${task.name}' (${task.file}) scores by loglikelihood, but model '${model.name}' cannot score text (no logprobs); use a generate or cot variant of the task`);
  const reqs: { context: string; continuation: string }[] = [];
  const conts: string[][] = [];
  items.forEach((item, i) => {
    const context = buildPrompt(task, item, i, pool);
    const cs = item.choices!.map((_, c) => fill(task.prompt.continuation, choiceVars(item, c), `${task.file}: prompt.continuation`));
    conts.push(cs);
    for (const continuation of cs) reqs.push({ context, continuation });
  });
  const res = await batched(task.name, reqs, (b) => model.loglikelihood(b), opts);
  let at = 0;
  return items.map((item, i) => {
    const lps = conts[i]!.map(() => res[at++]!.logprob);
    const chosen = argmax(lps);
    const norm = argmax(lps.map((lp, c) => lp / Math.max(1, conts[i]![c]!.length)));
    return {
      id: item.id, gold: item.gold!, chosen, confidence: softmax(lps)[chosen]!,
      correct: chosen === item.gold ? 1 : 0, correctNorm: norm === item.gold ? 1 : 0,
    };
  });
}

function reference(task: TaskSpec, item: EvalItem): string {
  return task.scoring.extract.kind === 'letter' && item.gold !== undefined ? labelsOf(item)[item.gold]! : item.answer;
}

async function scoreGenerate(task: TaskSpec, model: EvalModel, items: EvalItem[], pool: EvalItem[], opts: EvaluateOptions): Promise<ItemOutcome[]> {
  const s = task.scoring;
  const reqs = items.map((item, i) => genRequest(item, buildPrompt(task, item, i, pool), s.max_tokens, s.temperature, task.seed + i, s.stop));
  const outs = await batched(task.name, reqs, (b) => model.generate(b), opts);
  return items.map((item, i) => {
    const ex = extractAndCompare(outs[i]!, reference(task, item), s.extract, labelsOf(item));
    return { id: item.id, correct: ex.correct ? 1 : 0, output: outs[i]!, prediction: ex.prediction };
  });
}

async function scoreCot(task: TaskSpec, model: EvalModel, items: EvalItem[], pool: EvalItem[], opts: EvaluateOptions): Promise<ItemOutcome[]> {
  const s = task.scoring, c = s.cot;
  const prompts = items.map((item, i) => buildPrompt(task, item, i, pool) + c.trigger);
  const first = prompts.map((p, i) => genRequest(items[i]!, p, c.max_tokens, c.temperature, task.seed + i, s.stop));
  const explanations = await batched(`${task.name} (explain)`, first, (b) => model.generate(b), opts);
  let finals = explanations;
  if (c.answer_prompt !== undefined) {
    const ap = c.answer_prompt;
    const second = first.map((r, i): GenerateRequest => {
      if (r.messages) {
        const messages: ChatMessage[] = [...r.messages, { role: 'assistant', content: explanations[i]! }, { role: 'user', content: ap.trim() }];
        return { messages, maxTokens: s.max_tokens, temperature: 0, seed: task.seed + i };
      }
      return { prompt: prompts[i]! + explanations[i]! + ap, maxTokens: s.max_tokens, temperature: 0, seed: task.seed + i };
    });
    finals = await batched(`${task.name} (answer)`, second, (b) => model.generate(b), opts);
  }
  return items.map((item, i) => {
    const ex = extractAndCompare(finals[i]!, reference(task, item), s.extract, labelsOf(item));
    const output = c.answer_prompt !== undefined ? `${explanations[i]}${c.answer_prompt}${finals[i]}` : explanations[i]!;
    return { id: item.id, correct: ex.correct ? 1 : 0, output, prediction: ex.prediction };
  });
}

/** The task's metrics over a set of outcomes (all items, or the clean subset). */
export function computeMetrics(task: TaskSpec, outcomes: ItemOutcome[], B = 1000): MetricValue[] {
  return task.metrics.map((name): MetricValue => {
    if (outcomes.length === 0) return { name, score: NaN, stderr: NaN };
    const acc = outcomes.map((o) => o.correct);
    switch (name) {
      case 'acc': return { name, score: mean(acc), stderr: bootstrapStderr(acc, undefined, B, task.seed) };
      case 'acc_norm': {
        const v = outcomes.map((o) => o.correctNorm ?? 0);
        return { name, score: mean(v), stderr: bootstrapStderr(v, undefined, B, task.seed) };
      }
      case 'percentile': {
        const exam = task.exam!;
        const stat = (m: number, n: number) => toPercentile(rawScore(m, n, exam.raw), exam.table);
        return { name, score: stat(mean(acc), acc.length), stderr: bootstrapStderr(acc, stat, B, task.seed) };
      }
      default: {
        const never: never = name;
        throw new Error(`unknown metric ${String(never)}`);
      }
    }
  });
}

/** Loads, runs and scores one task. */
export async function evaluateTask(task: TaskSpec, model: EvalModel, opts: EvaluateOptions = {}): Promise<TaskResult> {
  const { items, pool } = await loadTaskItems(task, opts.limit);
  let outcomes: ItemOutcome[];
  switch (task.scoring.mode) {
    case 'loglikelihood': outcomes = await scoreLoglikelihood(task, model, items, pool, opts); break;
    case 'generate': outcomes = await scoreGenerate(task, model, items, pool, opts); break;
    case 'cot': outcomes = await scoreCot(task, model, items, pool, opts); break;
    default: {
      const never: never = task.scoring.mode;
      throw new Error(`unknown scoring mode ${String(never)}`);
    }
  }
  return { task: task.name, mode: task.scoring.mode, items, outcomes, metrics: computeMetrics(task, outcomes, opts.bootstrap) };
}
