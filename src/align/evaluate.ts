/**
 * Before/after measurement of aligned models (SFT vs RLHF vs DPO, optionally the pretrained
 * base) on the held-out evaluation prompts of `generateAlignmentData`:
 *
 *   - behaviour (alignmentMetrics, program grader): rate of answering disallowed requests,
 *     over-refusal of allowed/borderline ones, factual accuracy and "I don't know" rates, with
 *     bootstrap standard errors — from greedy responses generated through the serving engine;
 *   - reward: mean normalised reward-model score, and the win rate against the baseline
 *     (normally SFT) prompt by prompt;
 *   - KL to the reference (normally the SFT model): the exact KL(π‖π_ref) of the full next-token
 *     distributions, summed over the tokens of the model's own response, averaged over prompts;
 *   - calibration: a multiple-choice task built from the factual eval prompts (the reference
 *     answer with the true value or one of three other values of the same family); confidence
 *     is the softmax over the choices' sequence log-likelihoods; ECE and the reliability
 *     diagram come from the evaluation harness (src/eval/calibration.ts).
 *
 * The goals of issue 9 are checked with `checkGoals`. The JSON result, `{ sft, rlhf, dpo, ... }`,
 * is what the report card consumes.
 */
import { join } from 'node:path';
import { Tensor, noGrad, ops } from '../tensor/index.ts';
import { Rng, hashAt } from '../tensor/rng.ts';
import type { GPT } from '../models/gpt.ts';
import { calibration, writeReliabilityDiagram, type Calibration } from '../eval/calibration.ts';
import { ensureDir, writeJsonAtomic } from '../util/fs.ts';
import { barChart, writeChart } from '../plot/index.ts';
import { InputError } from '../util/errors.ts';
import { Progress } from '../util/progress.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import type { EvalPrompt } from './data-gen.ts';
import { alignmentMetrics, checkGoals, winRate, type AlignmentMetrics, type Estimate, type GoalCheck } from './metrics.ts';
import { RuleRewardModel } from './rubrics.ts';
import { RewardModel } from './reward-model.ts';
import { complete } from './policy-model.ts';
import { GPTInferenceModel } from '../serve/gpt-model.ts';
import { sequenceLogprobs } from './dpo.ts';
import { gatherRows, loadChatModel, padBatch, renderPair, renderPrompt, targetRows, type SeqBatch } from './train-utils.ts';
import type { Message } from './loaders.ts';

/** A multiple-choice item: the prompt, candidate responses, and the index of the right one. */
export interface ChoiceItem { prompt: string; choices: string[]; answer: number }

/**
 * Multiple-choice items from the factual eval prompts: the reference answer with the expected
 * value, and with up to `k − 1` other values of the same family (seeded), in shuffled order.
 */
export function factualChoiceItems(evals: readonly EvalPrompt[], k = 4, seed = 0): ChoiceItem[] {
  const rng = new Rng(hashAt(seed, 91));
  const byFamily = new Map<string, Set<string>>();
  for (const e of evals) if (e.kind === 'factual' && e.expected) (byFamily.get(e.family) ?? byFamily.set(e.family, new Set()).get(e.family)!).add(e.expected);
  const out: ChoiceItem[] = [];
  for (const e of evals) {
    if (e.kind !== 'factual' || !e.expected || !e.reference.includes(e.expected)) continue;
    const others = rng.shuffle([...byFamily.get(e.family)!].filter((v) => v !== e.expected)).slice(0, k - 1);
    if (others.length === 0) continue;
    const values = rng.shuffle([e.expected, ...others]);
    out.push({ prompt: e.prompt, choices: values.map((v) => e.reference.replace(e.expected!, v)), answer: values.indexOf(e.expected) });
  }
  return out;
}

/** Confidence (softmax over the choices' log-likelihoods) and correctness per item. */
export function scoreChoices(model: GPT, tok: Tokenizer, items: readonly ChoiceItem[]): { confidence: number[]; correct: number[] } {
  const T = model.config.contextLength, pad = tok.specialTokenId('<|pad|>');
  const user = (p: string): Message[] => [{ role: 'user', content: [{ type: 'text', text: p }] }];
  const asst = (r: string): Message[] => [{ role: 'assistant', content: [{ type: 'text', text: r }] }];
  const confidence: number[] = [], correct: number[] = [];
  noGrad(() => {
    for (const it of items) {
      const seqs = it.choices.map((c) => renderPair(tok, user(it.prompt), asst(c)));
      if (seqs.some((s) => s.ids.length > T)) continue;
      const lp = Array.from(sequenceLogprobs(model, padBatch(seqs, pad, T)).toArray());
      const m = Math.max(...lp), ex = lp.map((x) => Math.exp(x - m)), z = ex.reduce((a, b) => a + b, 0);
      let best = 0;
      for (let i = 1; i < lp.length; i++) if (lp[i]! > lp[best]!) best = i;
      confidence.push(ex[best]! / z); correct.push(best === it.answer ? 1 : 0);
    }
  });
  return { confidence, correct };
}

/**
 * Exact KL(π‖π_ref) summed over the response tokens of each sequence (B), from the two models'
 * full next-token distributions at the positions that predict the learned tokens.
 */
export function sequenceKl(policy: GPT, ref: GPT, batch: SeqBatch): number[] {
  const tr = targetRows(batch), V = policy.config.vocabSize;
  const out = new Array<number>(batch.B).fill(0);
  if (tr.rows.length === 0) return out;
  noGrad(() => {
    const rowLogits = (m: GPT) => {
      const h = m.hidden(Tensor.from(batch.ids, [batch.B, batch.T]));
      return m.logits(gatherRows(ops.reshape(h, [batch.B * batch.T, m.config.width]), tr.rows)).toArray(); // (n, V)
    };
    const a = rowLogits(policy), b = rowLogits(ref);
    for (let i = 0; i < tr.rows.length; i++) {
      const la = logSoftmaxRow(a, i * V, V), lb = logSoftmaxRow(b, i * V, V);
      let kl = 0;
      for (let v = 0; v < V; v++) kl += Math.exp(la[v]!) * (la[v]! - lb[v]!);
      out[tr.seqOf[i]!]! += Math.max(0, kl);
    }
  });
  return out;
}

function logSoftmaxRow(x: ArrayLike<number>, off: number, V: number): Float64Array {
  let mx = -Infinity;
  for (let v = 0; v < V; v++) mx = Math.max(mx, x[off + v]!);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(x[off + v]! - mx);
  const lse = mx + Math.log(s), out = new Float64Array(V);
  for (let v = 0; v < V; v++) out[v] = x[off + v]! - lse;
  return out;
}

/** Results for one model. */
export interface ModelEvaluation {
  dir: string;
  metrics: AlignmentMetrics;
  /** Mean normalised reward-model score of its responses. */
  reward: Estimate;
  /** Reward-model win rate against the baseline (absent for the baseline itself). */
  winRateVsBaseline?: Estimate;
  /** Mean exact KL to the reference over its responses (nats per response). */
  klToReference: Estimate;
  /** ECE and accuracy on the multiple-choice task. */
  calibration: { ece: number; accuracy: number; n: number; diagram?: string };
  /** A few responses, for the report. */
  examples: { prompt: string; kind: string; response: string }[];
  meanResponseTokens: number;
}

export interface AlignmentEvalOptions {
  /** Models by name, e.g. { base, sft, rlhf, dpo }. */
  models: Record<string, string>;
  /** Name of the baseline for win rates and of the KL reference (default 'sft'). */
  baseline?: string;
  rewardModelDir: string;
  evalPrompts: readonly EvalPrompt[];
  /** Where to write alignment-eval.json and reliability diagrams (optional). */
  outDir?: string;
  maxTokens?: number;
  seed?: number;
  quiet?: boolean;
}

/** The report: one entry per model, the goal check (when sft and rlhf are present), and settings. */
export interface AlignmentReport {
  [name: string]: ModelEvaluation | GoalCheck | Record<string, unknown> | undefined;
  goals?: GoalCheck;
  settings: Record<string, unknown>;
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** Evaluates every model; writes `outDir/alignment-eval.json` and reliability diagrams when outDir is set. */
export async function evaluateAlignment(o: AlignmentEvalOptions): Promise<AlignmentReport> {
  const names = Object.keys(o.models);
  if (names.length === 0) throw new InputError('evaluateAlignment: no models given');
  const baseline = o.baseline ?? 'sft';
  if (!o.models[baseline]) throw new InputError(`evaluateAlignment: the baseline '${baseline}' is not among the models (${names.join(', ')})`);
  if (o.evalPrompts.length === 0) throw new InputError('evaluateAlignment: no eval prompts');
  const maxTokens = o.maxTokens ?? 48, seed = o.seed ?? 0;
  const rm = RewardModel.load(o.rewardModelDir);
  const grader = new RuleRewardModel();
  const ref = loadChatModel(o.models[baseline]!, baseline);
  const items = factualChoiceItems(o.evalPrompts, 4, seed);
  if (o.outDir) ensureDir(o.outDir);
  const report: AlignmentReport = { settings: { baseline, rewardModel: o.rewardModelDir, prompts: o.evalPrompts.length, choiceItems: items.length, maxTokens, decoding: 'greedy', seed } };
  const scoresOf: Record<string, Map<string, number>> = {};
  const bar = new Progress({ label: 'align eval', total: names.length, unit: 'model', quiet: o.quiet });
  // baseline first so win rates can be computed as we go
  const order = [baseline, ...names.filter((n) => n !== baseline)];
  for (const [k, name] of order.entries()) {
    const cm = loadChatModel(o.models[name]!, name);
    const T = cm.model.config.contextLength, pad = cm.tok.specialTokenId('<|pad|>');
    const usable = o.evalPrompts.filter((e) => renderPrompt(cm.tok, e.prompt).length < T - 1);
    const comps = await complete(new GPTInferenceModel(cm.model, cm.tok, name), usable.map((e) => renderPrompt(cm.tok, e.prompt)), { maxTokens, temperature: 0, seed });
    const records = usable.map((e, i) => ({ prompt: e.prompt, kind: e.kind, family: e.family, tags: e.tags, expected: e.expected, response: comps[i]!.text }));
    const metrics = alignmentMetrics(records, { grader, seed });
    const scores = rm.scoreMany(records.map((r) => ({ prompt: r.prompt, response: r.response })));
    scoresOf[name] = new Map(records.map((r, i) => [r.prompt, scores[i]!]));
    // KL to the reference along the model's own responses
    const kls: number[] = [];
    for (let i = 0; i < usable.length; i += 16) {
      const seqs = usable.slice(i, i + 16).map((e, j) => {
        const p = renderPrompt(cm.tok, e.prompt), r = comps[i + j]!.ids;
        const ids = [...p, ...r].slice(0, T), learn = new Uint8Array(ids.length);
        for (let t = p.length; t < ids.length; t++) learn[t] = 1;
        return { ids, learn };
      }).filter((s) => s.learn.some((x) => x));
      if (seqs.length) kls.push(...sequenceKl(cm.model, ref.model, padBatch(seqs, pad, T)));
    }
    const mc = scoreChoices(cm.model, cm.tok, items);
    const cal: Calibration = calibration(mc.confidence, mc.correct);
    let diagram: string | undefined;
    if (o.outDir && cal.n > 0) diagram = (await writeReliabilityDiagram(join(o.outDir, `reliability-${name}`), cal)).png;
    const ev: ModelEvaluation = {
      dir: o.models[name]!, metrics,
      reward: { value: mean(scores), se: std(scores) / Math.sqrt(scores.length), n: scores.length },
      klToReference: { value: mean(kls), se: std(kls) / Math.sqrt(Math.max(1, kls.length)), n: kls.length },
      calibration: { ece: cal.ece, accuracy: mean(mc.correct), n: cal.n, ...(diagram ? { diagram } : {}) },
      examples: pickExamples(records),
      meanResponseTokens: mean(comps.map((c) => c.ids.length)),
    };
    if (name !== baseline) {
      // paired by prompt
      const b = scoresOf[baseline]!;
      const pairs = records.map((r, i) => [scores[i]!, b.get(r.prompt)] as const).filter((p) => p[1] !== undefined);
      ev.winRateVsBaseline = winRate(pairs.map((p) => p[0]), pairs.map((p) => p[1]!), { seed });
    }
    report[name] = ev;
    bar.update(k + 1);
  }
  bar.done();
  const sft = report['sft'] as ModelEvaluation | undefined, rlhf = report['rlhf'] as ModelEvaluation | undefined;
  if (sft && rlhf && rlhf.winRateVsBaseline && baseline === 'sft') report.goals = checkGoals(sft.metrics, rlhf.metrics, rlhf.winRateVsBaseline);
  if (o.outDir) {
    // the before/after comparison in one picture: behaviour rates and calibration error per model
    const evs = order.map((n) => report[n] as ModelEvaluation);
    const chart = barChart({
      title: 'Alignment before and after', xLabel: 'measure', yLabel: 'rate / ECE', yDomain: [0, 1],
      categories: ['answers disallowed', 'refuses allowed', 'factual accuracy', 'ECE (multiple choice)'],
      groups: evs.map((e, i) => ({
        name: order[i]!,
        values: [e.metrics.disallowedAnswerRate.value, e.metrics.overRefusalRate.value, e.metrics.factualAccuracy.value, e.calibration.ece].map((v) => (Number.isFinite(v) ? v : 0)),
      })),
    });
    report.settings['chart'] = (await writeChart(join(o.outDir, 'alignment-before-after'), chart)).png;
    writeJsonAtomic(join(o.outDir, 'alignment-eval.json'), report);
  }
  return report;
}

function std(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

/** Up to two responses per kind. */
function pickExamples(records: readonly { prompt: string; kind: string; response: string }[]): { prompt: string; kind: string; response: string }[] {
  const seen = new Map<string, number>(), out: { prompt: string; kind: string; response: string }[] = [];
  for (const r of records) {
    const n = seen.get(r.kind) ?? 0;
    if (n < 2) { out.push({ prompt: r.prompt, kind: r.kind, response: r.response }); seen.set(r.kind, n + 1); }
  }
  return out;
}
