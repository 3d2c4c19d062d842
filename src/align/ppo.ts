/**
 * RLHF with PPO (Schulman et al. 2017; Ziegler et al. 2019; Ouyang et al. 2022) on a GPT policy.
 *
 * Each PPO step:
 *   1. Rollouts: a batch of prompts is answered by the current policy through the serving
 *      engine (KV cache, continuous batching), sampled at temperature τ (default 0.7; the tempered policy is what is optimised).
 *   2. Scoring: the sequence score = rmCoef · w · (normalised reward-model score) + ruleCoef ·
 *      (rule-based reward of the rubric covering the prompt, program grader by default, or a
 *      model asked zero-shot), w the rubric's `reward_model_weight` (default 1). With several
 *      samples per prompt, scores are centred on their prompt's mean (per-prompt baseline). The old log-probs and values (policy) and the reference
 *      log-probs (frozen copy of the starting policy) of the sampled tokens come from one
 *      forward each.
 *   3. Per-token rewards −β·KL_t plus the score on the last token; GAE (γ, λ) gives advantages
 *      (whitened over the batch) and value targets (gae.ts). β is fixed or adaptive.
 *   4. Several epochs over shuffled minibatches of the rollouts minimise the clipped policy
 *      loss and the clipped value loss (one forward gives both: the value head reads the
 *      policy's final hidden state, detached, at the position that predicts each response token),
 *      plus, optionally, a demonstration loss (PPO-ptx, `ptxCoef`; off by default).
 *
 * Checkpoint choice: with validation prompts (phrasings PPO never trains on), every
 * `validateEvery` steps the policy answers them greedily, as the evaluation does, and is scored
 * with the training reward (reward model + rules), averaged evenly over prompt kinds. The policy
 * saved is the one with the best validation reward (step 0, the starting policy, is logged for
 * reference but not eligible), so a run that drifts late — refusals spreading to allowed
 * requests on unseen phrasings, or answers to disallowed ones coming back — keeps its best state.
 * With `weightAverage`, a moving average of the weights is what is validated and saved.
 *
 * Logged per step to ppo-metrics.jsonl: mean score, RM and rule rewards, KL, β, the batch's
 * rate of answering disallowed requests and of refusing allowed ones, clip fraction, losses.
 * Plots of reward, KL and refusal rates over steps are written as SVG + PNG.
 *
 * The clipped losses use host-side selection: which branch of max(·,·) is active depends only
 * on values, so the loss is the active branch as a tensor expression (gradient exact, as in
 * reference-losses.ts) plus a constant where the clipped branch is flat.
 */
import { join } from 'node:path';
import { Tensor, noGrad, inStep, ops } from '../tensor/index.ts';
import { hashAt, Rng } from '../tensor/rng.ts';
import type { GPT } from '../models/gpt.ts';
import { Linear, type Param } from '../nn/layers.ts';
import { loadModel, saveModel, writeModelConfig } from '../train/checkpoint.ts';
import { WeightAverage } from '../train/weight-average.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { lineChart, writeChart } from '../plot/index.ts';
import { Progress } from '../util/progress.ts';
import { InputError } from '../util/errors.ts';
import { ensureDir, writeJsonAtomic } from '../util/fs.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { AdaptiveKlController, FixedKlController, gae, klPerToken, tokenRewards, whiten, type KlController } from './gae.ts';
import { RuleRewardModel } from './rubrics.ts';
import type { GraderModel } from './model-grader.ts';
import { RewardModel } from './reward-model.ts';
import { complete } from './policy-model.ts';
import { GPTInferenceModel } from '../serve/gpt-model.ts';
import type { Conversation } from './loaders.ts';
import { renderConversations } from './sft.ts';
import {
  appendMetrics, EpochSampler, fineTuneOptimizer, gatherRows, host, loadChatModel, packBatch, readMetrics, renderPrompt, resetMetrics,
  targetRows, tokenLogprobs, type SeqBatch, type Sequence,
} from './train-utils.ts';

// ---------------------------------------------------------------------------------------------
// losses

/**
 * Clipped PPO policy loss, mean over tokens: max(−A·r, −A·clip(r, 1±ε)), r = exp(logp − oldLogp).
 * logp (n) carries gradients; oldLogp and advantages are host arrays. Returns the loss and the
 * fraction of tokens where the clipped branch was active.
 */
export function ppoPolicyLoss(logp: Tensor, oldLogp: Float32Array, advantages: Float32Array, clip: number): { loss: Tensor; clipFrac: number; approxKl: number } {
  const n = oldLogp.length;
  const lp = logp.toArray();
  const active = new Float32Array(n), constant = new Float32Array(n), negA = new Float32Array(n);
  let clipped = 0, kl = 0;
  for (let i = 0; i < n; i++) {
    const d = lp[i]! - oldLogp[i]!, r = Math.exp(d), A = advantages[i]!;
    const un = -A * r, cl = -A * Math.min(1 + clip, Math.max(1 - clip, r));
    if (un >= cl) { active[i] = 1; negA[i] = -A; } else { constant[i] = cl; clipped++; }
    kl += -d;
  }
  const ratio = ops.exp(ops.sub(logp, Tensor.from(oldLogp, [n], logp.backend))); // (n)
  const perToken = ops.add(ops.mul(ratio, Tensor.from(negA, [n], logp.backend)), Tensor.from(constant, [n], logp.backend));
  return { loss: ops.mean(perToken), clipFrac: clipped / n, approxKl: kl / n };
}

/**
 * Clipped value loss, mean over tokens: ½·max((v − R)², (v_c − R)²), v_c = v_old + clip(v − v_old, ±ε).
 * values (n) carries gradients.
 */
export function ppoValueLoss(values: Tensor, oldValues: Float32Array, returns: Float32Array, clip: number): Tensor {
  const n = oldValues.length;
  const v = values.toArray();
  const w = new Float32Array(n), constant = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const vc = oldValues[i]! + Math.min(clip, Math.max(-clip, v[i]! - oldValues[i]!));
    const a = (v[i]! - returns[i]!) ** 2, b = (vc - returns[i]!) ** 2;
    if (a >= b || Math.abs(v[i]! - oldValues[i]!) < clip) w[i] = 1; else constant[i] = 0.5 * b;
  }
  const err = ops.sub(values, Tensor.from(returns, [n], values.backend));
  const perToken = ops.add(ops.mul(ops.scalar('mul', ops.mul(err, err), 0.5), Tensor.from(w, [n], values.backend)), Tensor.from(constant, [n], values.backend));
  return ops.mean(perToken);
}

// ---------------------------------------------------------------------------------------------
// policy with value head

/**
 * The policy GPT plus a value head on its final hidden states. The value head reads the hidden
 * states detached from the graph: the value loss trains only the head (at `valueLrScale` times
 * the policy's learning rate), so early, large value errors cannot disturb the language model.
 */
export class PolicyWithValue {
  readonly valueHead: Linear;
  constructor(readonly gpt: GPT, seed = 0, readonly valueLrScale = 10) {
    this.valueHead = new Linear('value_head', gpt.config.width, 1, { bias: true, std: 1e-3, rng: new Rng(hashAt(seed, 55)) });
  }
  params(): Param[] { return [...this.gpt.params(), ...this.valueHead.params(true, this.valueLrScale)]; }
  /** Log-probs (n) of the batch's target tokens and the values (n) of the states predicting them. */
  forward(batch: SeqBatch, tr = targetRows(batch), temperature = 1): { logp: Tensor; values: Tensor } {
    const { logp, hidden } = tokenLogprobs(this.gpt, batch, tr, temperature);
    const values = ops.reshape(this.valueHead.forward(gatherRows(hidden.detach(), tr.rows)), [tr.rows.length]); // (n)
    return { logp, values };
  }
}

// ---------------------------------------------------------------------------------------------
// options

/** A rollout prompt; `tags` select the rubric (else the rubric config's tagging rules apply). */
export interface PpoPrompt { prompt: string; tags?: string[]; kind?: string }

export type KlOptions = { kind: 'fixed'; beta: number } | { kind: 'adaptive'; init: number; target: number; horizon: number };

export interface PpoOptions {
  policyDir: string;
  rewardModelDir: string;
  outDir: string;
  prompts: readonly PpoPrompt[];
  /** Rule-based reward model (default: data/policy/rubrics.yaml with the program grader). */
  rules?: RuleRewardModel;
  /** PPO steps (rollout batches), default 80. */
  steps?: number;
  /**
   * Rollouts per step (default 128: 32 prompts × 4 samples). At 32 the reward did not rise over
   * 40 steps while the KL grew to 7–8 nats: Adam takes full-size steps along the noise of small
   * minibatches, and the pulls of the prompt kinds (refuse here, answer there) cancel. With 64 or
   * 128 rollouts and minibatches of 32 the reward rises (0.2 → 1.0–1.4) on the same stages.
   */
  batchSize?: number;
  /** Epochs over each batch (default 4). */
  epochs?: number;
  /** Rollouts per minibatch (default 32). */
  minibatch?: number;
  /** Learning rate (constant after a short warmup), default 2e-5. */
  lr?: number;
  /** Policy ratio clip ε (default 0.2). */
  clip?: number;
  /** Value clip (default 0.2). */
  valueClip?: number;
  /** Value loss coefficient (default 0.1). */
  vfCoef?: number;
  /** Discount (default 1). */
  gamma?: number;
  /**
   * GAE λ (default 1: every token of a response gets the full score minus the value baseline;
   * the first tokens, which decide between refusing and answering, would otherwise get only
   * λ^length of the credit while the value head is still untrained).
   */
  lambda?: number;
  /** KL penalty (default adaptive: init 0.05, target 2 nats per response, horizon 2000 rollouts). */
  kl?: KlOptions;
  /** Tokens generated per response at most (default 48). */
  maxTokens?: number;
  /**
   * Sampling temperature of the rollouts (default 0.7). The policy being optimised is the
   * tempered distribution softmax(logits/τ): log-probs, ratios and KL all use it.
   */
  temperature?: number;
  /** Weight of the normalised reward-model score (default 1). */
  rmCoef?: number;
  /** Weight of the rule-based reward (default 2). */
  ruleCoef?: number;
  /**
   * Draw each batch evenly across prompt kinds (`kind`, else the first tag), so rare kinds such
   * as disallowed requests are seen as often as common ones (default true).
   */
  balanceKinds?: boolean;
  /**
   * With balanced kinds, how many turns of the round-robin a kind gets (positive integers; absent
   * kinds get 1): `{ disallowed: 2 }` draws disallowed requests twice as often as each other kind.
   */
  kindWeights?: Readonly<Record<string, number>>;
  /**
   * Responses sampled per prompt (default 4; must divide the batch size). With k > 1 each
   * prompt's scores are centred on the mean of its own k responses before GAE (a per-prompt
   * baseline, as in RLOO/GRPO): what is reinforced is how a response compares with the policy's
   * other answers to the same request — refusing vs answering that request — rather than how the
   * request's kind scores on average, which the value head learns only slowly.
   */
  samplesPerPrompt?: number;
  /**
   * Validation prompts (phrasings PPO does not train on). With them, the saved policy is the one
   * with the best validation reward among steps validateEvery, 2·validateEvery, … and the last.
   */
  validation?: readonly PpoPrompt[];
  /** Steps between validations (default 10; 0 = no validation, the last policy is saved). */
  validateEvery?: number;
  /**
   * Decay of an exponential moving average of the policy's weights, folded in after every step
   * (0 = off, the default). When on, the average (not the live weights) is what is validated and
   * saved; training itself, rollouts included, uses the live weights.
   */
  weightAverage?: number;
  /**
   * Also save the policy of every validated step (step 0 included) under DIR/steps/step-NNNN
   * (model, config, tokenizer; the weight average where on), so that the checkpoint can be
   * chosen again later by another rule (default false).
   */
  keepCheckpoints?: boolean;
  /**
   * Demonstrations mixed into every PPO update (PPO-ptx; Ouyang et al. 2022 mix in pretraining
   * text): the loss adds ptxCoef × the mean assistant-token negative log-likelihood of `ptxBatch`
   * conversations, drawn epoch by epoch. Usually the SFT conversations, meant as a steady pull
   * towards answering allowed requests, which rollouts give only when a sample happens to refuse.
   * At ptxCoef 1 on the speedrun's stages it held the policy near SFT (half the KL) and PPO learned
   * less without refusing fewer allowed requests (docs/experiments/alignment.md), so it is off.
   */
  ptxConversations?: readonly Conversation[];
  /** Weight of the demonstration loss (default 0: off). */
  ptxCoef?: number;
  /** Conversations per update (default 8). */
  ptxBatch?: number;
  seed?: number;
  quiet?: boolean;
}

/** One validation's logged row (ppo-validation.jsonl). */
export interface ValidationRow {
  step: number;
  /** Training reward of greedy responses, mean per prompt kind, then mean over kinds. */
  score: number;
  by_kind: Record<string, number>;
  disallowed_answer_rate: number | null; over_refusal_rate: number | null;
  prompts: number; seconds: number;
}

/** One PPO step's logged row. */
export interface PpoRow {
  step: number; reward: number; rm_reward: number; rule_reward: number; kl: number; beta: number;
  disallowed_answer_rate: number | null; over_refusal_rate: number | null;
  clip_frac: number; value_loss: number; policy_loss: number; approx_kl: number; response_tokens: number; ended: number; seconds: number;
  /** Mean demonstration loss of the step's updates (null without PPO-ptx). */
  ptx_loss: number | null;
}

export interface PpoResult {
  policy: GPT; rows: PpoRow[]; outDir: string; seconds: number;
  validation: ValidationRow[];
  /** The step whose policy was saved (the last step without validation). */
  selectedStep: number;
}

interface Rollout { prompt: PpoPrompt; promptIds: number[]; ids: number[]; text: string; ended: boolean; group: number }

/** Runs PPO; writes the policy (model dir + value_head.safetensors), ppo-metrics.jsonl and plots to outDir. */
export async function trainPpo(o: PpoOptions): Promise<PpoResult> {
  const steps = o.steps ?? 80, bs = o.batchSize ?? 128, epochs = o.epochs ?? 4, mb = o.minibatch ?? 32, lr = o.lr ?? 2e-5;
  const clip = o.clip ?? 0.2, vclip = o.valueClip ?? 0.2, vfCoef = o.vfCoef ?? 0.1, gamma = o.gamma ?? 1, lambda = o.lambda ?? 1;
  const maxTokens = o.maxTokens ?? 48, temperature = o.temperature ?? 0.7, rmCoef = o.rmCoef ?? 1, ruleCoef = o.ruleCoef ?? 2, seed = o.seed ?? 1;
  const perPrompt = o.samplesPerPrompt ?? 4;
  if (!(Number.isInteger(perPrompt) && perPrompt >= 1 && bs % perPrompt === 0)) throw new InputError(`rlhf: samples per prompt must be a whole number >= 1 dividing the batch size ${bs}, got ${perPrompt}`);
  const klOpt: KlOptions = o.kl ?? { kind: 'adaptive', init: 0.05, target: 2, horizon: 2000 };
  if (o.prompts.length === 0) throw new InputError('rlhf: no prompts to roll out');
  if (!(clip > 0 && clip < 1)) throw new InputError(`rlhf: clip must be in (0, 1), got ${clip}`);
  const cm = loadChatModel(o.policyDir, '--policy');
  const policy = new PolicyWithValue(cm.model, seed);
  const ref = loadModel(o.policyDir);
  const rm = RewardModel.load(o.rewardModelDir);
  if (rm.tok.vocabSize !== cm.tok.vocabSize) throw new InputError(`rlhf: the reward model's tokenizer (${rm.tok.vocabSize} ids) differs from the policy's (${cm.tok.vocabSize})`);
  const rules = o.rules ?? new RuleRewardModel();
  const kl: KlController = klOpt.kind === 'fixed' ? new FixedKlController(klOpt.beta) : new AdaptiveKlController(klOpt);
  const T = cm.model.config.contextLength, pad = cm.tok.specialTokenId('<|pad|>');
  const prompts = o.prompts.map((p) => ({ p, ids: renderPrompt(cm.tok, p.prompt) })).filter((x) => x.ids.length < T - 1);
  if (prompts.length === 0) throw new InputError(`rlhf: every prompt is longer than the context of ${T}`);
  const serving = new GPTInferenceModel(cm.model, cm.tok, 'policy');
  const opt = fineTuneOptimizer(policy.params(), lr);
  // A PPO step has three phases with their own buffer sizes (decoding with KV caches, scoring,
  // updates on packed rows of varying count). With the default pool of 256 MB each phase evicted
  // the others' storage and allocated afresh: 3 PPO steps took 43-46 s instead of 38-40 s with
  // 1 GB, peak RSS 1.2 GB against 1.8 GB (the Zen 3 VM).
  opt.backend.reservePool?.(2 ** 30);
  const avgDecay = o.weightAverage ?? 0;
  if (!(avgDecay >= 0 && avgDecay < 1)) throw new InputError(`rlhf: weightAverage must be in [0, 1), got ${avgDecay}`);
  const avg = avgDecay > 0 ? new WeightAverage(policy.params(), avgDecay) : null;
  /** Runs fn with the weights that would be saved (the average when on). */
  const withSaved = <T>(fn: () => T | Promise<T>): Promise<T> => (avg ? avg.with(fn) : Promise.resolve().then(fn));
  const sampler = new PromptSampler(prompts.map((x) => (o.balanceKinds ?? true) ? (x.p.kind ?? x.p.tags?.[0] ?? '') : ''), seed, (o.balanceKinds ?? true) ? o.kindWeights : undefined);
  const shuffler = new Rng(hashAt(seed, 42));
  const ptxCoef = o.ptxCoef ?? 0, ptxBatch = o.ptxBatch ?? 8;
  if (!(ptxCoef >= 0)) throw new InputError(`rlhf: ptxCoef must be >= 0, got ${ptxCoef}`);
  if (!(Number.isInteger(ptxBatch) && ptxBatch >= 1)) throw new InputError(`rlhf: ptxBatch must be a whole number >= 1, got ${ptxBatch}`);
  if (ptxCoef > 0 && !o.ptxConversations?.length) throw new InputError('rlhf: ptxCoef > 0 needs demonstration conversations (ptxConversations)');
  const ptxSeqs = ptxCoef > 0 ? renderConversations(cm.tok, o.ptxConversations!, T, 'rlhf (ptx)', o.policyDir, o.quiet).seqs : [];
  const ptxSampler = ptxSeqs.length > 0 ? new EpochSampler(ptxSeqs.length, new Rng(hashAt(seed, 43))) : null;
  const validateEvery = o.validateEvery ?? 10;
  if (!(Number.isInteger(validateEvery) && validateEvery >= 0)) throw new InputError(`rlhf: validateEvery must be a whole number >= 0, got ${validateEvery}`);
  const valPrompts = validateEvery > 0 ? (o.validation ?? []).map((p) => ({ p, ids: renderPrompt(cm.tok, p.prompt) })).filter((x) => x.ids.length < T - 1) : [];

  /** Scores responses as the training does: rm·w·RM + rule·rules; counts refusal outcomes. */
  const scoreResponses = (items: { p: PpoPrompt; text: string }[]) => {
    const rmScores = rm.scoreMany(items.map((r) => ({ prompt: r.p.prompt, response: r.text })));
    let disN = 0, disAnswered = 0, allowN = 0, allowRefused = 0;
    const rmWeights: number[] = [];
    const ruleScores = items.map((r) => {
      const pin = { text: r.p.prompt, tags: r.p.tags };
      const rr = rules.rewardForSync(pin, r.text);
      const tags = rules.tagsOf(pin);
      rmWeights.push(rules.rubricFor(tags)?.reward_model_weight ?? 1);
      if (tags.includes('disallowed')) { disN++; if (rr.class === 'C' || rr.class === 'D') disAnswered++; }
      else if (tags.includes('allowed') || tags.includes('borderline')) { allowN++; if (rr.class === 'A' || rr.class === 'B') allowRefused++; }
      return rr.reward;
    });
    const scores = items.map((_, i) => rmCoef * rmWeights[i]! * rmScores[i]! + ruleCoef * ruleScores[i]!);
    return { scores, rmScores, ruleScores, disallowed: disN ? disAnswered / disN : null, overRefusal: allowN ? allowRefused / allowN : null };
  };
  const { model: _m, ...rest } = cm.config;
  const validationPath = join(o.outDir, 'ppo-validation.jsonl');
  const validation: ValidationRow[] = [];
  const validate = async (step: number): Promise<ValidationRow> => {
    const tv = Date.now();
    cm.model.training = false;
    const comps = await withSaved(() => complete(serving, valPrompts.map((v) => v.ids), { maxTokens, temperature: 0, seed: 0, batch: bs }));
    const s = scoreResponses(valPrompts.map((v, i) => ({ p: v.p, text: comps[i]!.text })));
    const sums = new Map<string, [number, number]>();
    valPrompts.forEach((v, i) => { const k = v.p.kind ?? v.p.tags?.[0] ?? ''; const a = sums.get(k) ?? [0, 0]; a[0] += s.scores[i]!; a[1]++; sums.set(k, a); });
    const byKind = Object.fromEntries([...sums.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, [t, n]]) => [k, t / n]));
    const means = Object.values(byKind);
    const row: ValidationRow = {
      step, score: means.reduce((a, b) => a + b, 0) / means.length, by_kind: byKind,
      disallowed_answer_rate: s.disallowed, over_refusal_rate: s.overRefusal, prompts: valPrompts.length, seconds: (Date.now() - tv) / 1000,
    };
    validation.push(row);
    appendMetrics(validationPath, row as unknown as Record<string, unknown>);
    if (o.keepCheckpoints) {
      await withSaved(() => saveModel(join(o.outDir, 'steps', `step-${String(step).padStart(4, '0')}`), cm.model, { ...rest, rlhf: { step, validation: row } }, join(o.policyDir, 'tokenizer.json')));
    }
    return row;
  };
  const saveValueHead = () => writeSafetensors(join(o.outDir, 'value_head.safetensors'), Object.fromEntries(policy.valueHead.params().map((p) => [p.name, { shape: p.tensor.shape, data: host(p.tensor) }])));
  /**
   * Old log-probs, values and reference log-probs of the sampled tokens, at `offs[i]` for rollout
   * i. Minibatch by minibatch, each in a step scope: one scope over the whole batch of 128 would
   * hold about 3 GB to its end, and outside scopes every pass allocated fresh storage.
   */
  const scoreRollouts = (seqs: readonly Sequence[], offs: readonly number[]) => {
    const total = offs[offs.length - 1]! + learnedCount(seqs[seqs.length - 1]!);
    const oldLogp = new Float32Array(total), oldValues = new Float32Array(total), refLogp = new Float32Array(total);
    for (let s = 0; s < seqs.length; s += mb) {
      const idx = seqs.slice(s, s + mb).map((_, j) => s + j);
      const batch = packBatch(idx.map((i) => seqs[i]!), pad, T), tr = targetRows(batch);
      noGrad(() => inStep(opt.backend, () => {
        const f = policy.forward(batch, tr, temperature);
        const rl = tokenLogprobs(ref, batch, tr, temperature).logp;
        scatterRows(batch.order.map((j) => idx[j]!), seqs, offs, [[f.logp.toArray() as Float32Array, oldLogp], [f.values.toArray() as Float32Array, oldValues], [rl.toArray() as Float32Array, refLogp]]);
      }));
    }
    return { oldLogp, oldValues, refLogp };
  };
  let best: ValidationRow | null = null;

  ensureDir(o.outDir);
  const metricsPath = join(o.outDir, 'ppo-metrics.jsonl');
  resetMetrics(metricsPath);
  resetMetrics(validationPath);
  if (valPrompts.length > 0) await validate(0);
  const bar = new Progress({ label: 'rlhf', total: steps, unit: 'step', quiet: o.quiet });
  const t0 = Date.now();
  const rows: PpoRow[] = [];
  for (let step = 0; step < steps; step++) {
    const ts = Date.now();
    // 1. rollouts through the serving engine, all of a step's at once (decoding 128 rows per GEMM
    //    instead of 16; the tokens are the same, since each sequence samples with its own seed)
    const chosen = sampler.next(bs / perPrompt).flatMap((i) => new Array<typeof prompts[number]>(perPrompt).fill(prompts[i]!));
    cm.model.training = false;
    const comps = await complete(serving, chosen.map((c) => c.ids), { maxTokens, temperature, seed: hashAt(seed, 1000 + step), batch: bs });
    const rollouts: Rollout[] = [];
    chosen.forEach((c, i) => { if (comps[i]!.ids.length > 0) rollouts.push({ prompt: c.p, promptIds: c.ids, ids: comps[i]!.ids, text: comps[i]!.text, ended: comps[i]!.ended, group: Math.floor(i / perPrompt) }); });
    if (rollouts.length < 2) throw new InputError(`rlhf step ${step + 1}: fewer than 2 non-empty responses; prompts leave no room in the context of ${T}?`);
    // 2. scores
    const { scores, rmScores, ruleScores, disallowed, overRefusal } = scoreResponses(rollouts.map((r) => ({ p: r.prompt, text: r.text })));
    const centred = perPrompt > 1 ? centreByGroup(scores, rollouts.map((r) => r.group)) : scores;
    // old log-probs, values and reference log-probs of the sampled tokens
    const seqs = rollouts.map((r) => {
      const ids = [...r.promptIds, ...r.ids];
      const learn = new Uint8Array(ids.length);
      for (let t = r.promptIds.length; t < ids.length; t++) learn[t] = 1;
      return { ids, learn };
    });
    // per-token arrays: rollout i's response tokens at offs[i]
    const offs: number[] = [];
    let off = 0;
    for (const r of rollouts) { offs.push(off); off += r.ids.length; }
    const { oldLogp, oldValues, refLogp } = scoreRollouts(seqs, offs);
    // 3. per-token rewards, GAE
    const beta = kl.value;
    const advs: number[][] = [], rets: number[][] = [];
    let klSum = 0;
    rollouts.forEach((r, i) => {
      const a = offs[i]!, n = r.ids.length;
      const k = klPerToken(oldLogp.subarray(a, a + n), refLogp.subarray(a, a + n), 'k1');
      klSum += k.reduce((x, y) => x + y, 0);
      const g = gae(tokenRewards(k, beta, centred[i]!), oldValues.subarray(a, a + n), { gamma, lambda, lastValue: 0 });
      advs.push(g.advantages); rets.push(g.returns);
    });
    const white = whiten(advs);
    const meanKl = klSum / rollouts.length;
    // 4. PPO epochs over minibatches
    cm.model.training = true;
    let clipSum = 0, vlSum = 0, plSum = 0, akSum = 0, ptxSum = 0, updates = 0;
    for (let e = 0; e < epochs; e++) {
      const order = shuffler.shuffle(rollouts.map((_, i) => i));
      for (let s = 0; s < order.length; s += mb) {
        const idx = order.slice(s, s + mb);
        const batch = packBatch(idx.map((i) => seqs[i]!), pad, T), tr = targetRows(batch);
        const n = tr.rows.length;
        const oLp = new Float32Array(n), oV = new Float32Array(n), A = new Float32Array(n), R = new Float32Array(n);
        let w = 0;
        for (const i of batch.order.map((j) => idx[j]!)) {
          const a = offs[i]!;
          for (let t = 0; t < rollouts[i]!.ids.length; t++, w++) { oLp[w] = oldLogp[a + t]!; oV[w] = oldValues[a + t]!; A[w] = white[i]![t]!; R[w] = rets[i]![t]!; }
        }
        if (w !== n) throw new InputError(`rlhf: internal mismatch of response tokens (${w} vs ${n})`);
        const demo = ptxSampler ? packBatch(ptxSampler.next(ptxBatch).map((i) => ptxSeqs[i]!), pad, T) : null;
        // Every buffer of the update is reused by the next one as soon as the gradients are cleared.
        inStep(opt.backend, () => {
          const f = policy.forward(batch, tr, temperature);
          const pl = ppoPolicyLoss(f.logp, oLp, A, clip);
          const vl = ppoValueLoss(f.values, oV, R, vclip);
          let loss = ops.add(pl.loss, ops.scalar('mul', vl, vfCoef));
          if (demo) {
            const nll = ops.neg(ops.mean(tokenLogprobs(cm.model, demo).logp));
            loss = ops.add(loss, ops.scalar('mul', nll, ptxCoef));
            ptxSum += nll.item();
          }
          opt.zeroGrad();
          loss.backward();
          opt.update(lr * Math.min(1, (step + 1) / 3));
          opt.zeroGrad();
          clipSum += pl.clipFrac; vlSum += vl.item(); plSum += pl.loss.item(); akSum += pl.approxKl; updates++;
        });
      }
    }
    cm.model.training = false;
    kl.update(meanKl, rollouts.length);
    avg?.update();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const row: PpoRow = {
      step: step + 1, reward: mean(scores), rm_reward: mean(rmScores), rule_reward: mean(ruleScores), kl: meanKl, beta,
      disallowed_answer_rate: disallowed, over_refusal_rate: overRefusal,
      clip_frac: clipSum / updates, value_loss: vlSum / updates, policy_loss: plSum / updates, approx_kl: akSum / updates,
      response_tokens: mean(rollouts.map((r) => r.ids.length)), ended: mean(rollouts.map((r) => (r.ended ? 1 : 0))), seconds: (Date.now() - ts) / 1000,
      ptx_loss: ptxSampler ? ptxSum / updates : null,
    };
    rows.push(row);
    appendMetrics(metricsPath, row as unknown as Record<string, unknown>);
    const v = valPrompts.length > 0 && ((step + 1) % validateEvery === 0 || step + 1 === steps) ? await validate(step + 1) : null;
    if (v && (best === null || v.score > best.score)) {
      best = v;
      await withSaved(() => {
        saveModel(o.outDir, cm.model, { ...rest, rlhf: { selectedStep: v.step, partial: step + 1 < steps } }, join(o.policyDir, 'tokenizer.json'));
        saveValueHead();
      });
    }
    bar.update(step + 1, { reward: row.reward.toFixed(3), kl: row.kl.toFixed(2), dis: row.disallowed_answer_rate?.toFixed(2) ?? '-', over: row.over_refusal_rate?.toFixed(2) ?? '-', ...(v ? { val: v.score.toFixed(3) } : {}) });
  }
  bar.done();
  const seconds = (Date.now() - t0) / 1000;
  const selectedStep = best?.step ?? steps;
  const summary = {
    steps, batchSize: bs, epochs, minibatch: mb, lr, clip, valueClip: vclip, vfCoef, gamma, lambda, kl: { ...klOpt, final: kl.state() },
    maxTokens, temperature, rmCoef, ruleCoef, samplesPerPrompt: perPrompt, kindWeights: (o.balanceKinds ?? true) ? (o.kindWeights ?? {}) : null, seed, rewardModel: o.rewardModelDir, from: o.policyDir, prompts: prompts.length, seconds,
    validateEvery, validationPrompts: valPrompts.length, weightAverage: avgDecay, ptx: ptxSampler ? { coef: ptxCoef, batch: ptxBatch, conversations: ptxSeqs.length } : null, selectedStep, selected: best, last: rows[rows.length - 1],
  };
  avg?.swapIn(); // from here on the model holds the weights that are saved
  if (best === null) {
    saveModel(o.outDir, cm.model, { ...rest, rlhf: summary }, join(o.policyDir, 'tokenizer.json'));
    saveValueHead();
  } else writeModelConfig(o.outDir, cm.model.config, { ...rest, rlhf: summary }); // the chosen step's weights are on disk already
  writeJsonAtomic(join(o.outDir, 'rlhf-summary.json'), summary);
  await writePpoPlots(o.outDir, readMetrics(metricsPath) as unknown as PpoRow[], validation, selectedStep);
  return { policy: best === null || best.step === steps ? cm.model : loadModel(o.outDir), rows, outDir: o.outDir, seconds, validation, selectedStep };
}

/** Learned tokens of a sequence: the ones `targetRows` gives a row (a rollout's response tokens). */
function learnedCount(s: Sequence): number {
  let n = 0;
  for (const l of s.learn) n += l;
  return n;
}

/**
 * Copies per-token values of a packed batch, in its flat order (the sequences `order`, each with
 * one value per learned token), to each sequence's place `offs[i]` in the per-token arrays: for
 * each pair [from, to].
 */
function scatterRows(order: readonly number[], seqs: readonly Sequence[], offs: readonly number[], pairs: readonly [Float32Array, Float32Array][]): void {
  let r = 0;
  for (const i of order) {
    const n = learnedCount(seqs[i]!);
    for (const [from, to] of pairs) to.set(from.subarray(r, r + n), offs[i]!);
    r += n;
  }
  for (const [from] of pairs) if (r !== from.length) throw new InputError(`rlhf: internal mismatch of response tokens (${r} vs ${from.length})`);
}

/** Each score minus the mean score of its group (the responses to the same prompt). */
export function centreByGroup(scores: readonly number[], groups: readonly number[]): number[] {
  const sum = new Map<number, [number, number]>();
  scores.forEach((s, i) => { const g = sum.get(groups[i]!) ?? [0, 0]; g[0] += s; g[1]++; sum.set(groups[i]!, g); });
  return scores.map((s, i) => { const [t, n] = sum.get(groups[i]!)!; return s - t / n; });
}

/**
 * Draws prompt indices round-robin over groups (kinds), each group in its own seeded epoch order;
 * a group with weight w (default 1) gets w turns per round, spread through the round.
 */
export class PromptSampler {
  private readonly groups: { idx: number[]; sampler: EpochSampler }[] = [];
  private readonly schedule: number[] = [];
  private turn = 0;
  constructor(keys: readonly string[], seed: number, weights: Readonly<Record<string, number>> = {}) {
    const by = new Map<string, number[]>();
    keys.forEach((k, i) => (by.get(k) ?? by.set(k, []).get(k)!).push(i));
    const w: number[] = [];
    [...by.keys()].sort().forEach((k, g) => {
      const idx = by.get(k)!;
      this.groups.push({ idx, sampler: new EpochSampler(idx.length, new Rng(hashAt(seed, 4100 + g))) });
      const wk = weights[k] ?? 1;
      if (!(Number.isInteger(wk) && wk >= 1)) throw new InputError(`rlhf: kind weight of '${k}' must be a positive integer, got ${wk}`);
      w.push(wk);
    });
    // Round r of max(w) sub-rounds visits the groups whose weight exceeds r, in key order.
    const most = Math.max(1, ...w);
    for (let r = 0; r < most; r++) w.forEach((wk, g) => { if (wk > r) this.schedule.push(g); });
  }
  next(k: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < k; i++) {
      const g = this.groups[this.schedule[this.turn++ % this.schedule.length]!]!;
      out.push(g.idx[g.sampler.next(1)[0]!]!);
    }
    return out;
  }
}

/**
 * Plots of reward, KL and refusal rates over PPO steps (DIR/ppo-reward, ppo-kl, ppo-refusals
 * .svg/.png) and, with validation rows, the validation reward and refusal rates
 * (ppo-validation), titled with the chosen step.
 */
export async function writePpoPlots(dir: string, rows: readonly PpoRow[], validation: readonly ValidationRow[] = [], selectedStep?: number): Promise<string[]> {
  if (rows.length === 0) return [];
  const x = rows.map((r) => r.step);
  const out: string[] = [];
  const reward = lineChart({
    title: 'PPO reward per step', xLabel: 'PPO step', yLabel: 'mean reward',
    series: [
      { name: 'total', x, y: rows.map((r) => r.reward) },
      { name: 'reward model (normalised)', x, y: rows.map((r) => r.rm_reward) },
      { name: 'rule-based', x, y: rows.map((r) => r.rule_reward) },
    ],
  });
  out.push((await writeChart(join(dir, 'ppo-reward'), reward)).png);
  const klc = lineChart({ title: 'KL to the reference policy', xLabel: 'PPO step', yLabel: 'KL (nats per response)', series: [{ name: 'KL', x, y: rows.map((r) => r.kl) }] });
  out.push((await writeChart(join(dir, 'ppo-kl'), klc)).png);
  const series = [];
  const dis = rows.filter((r) => r.disallowed_answer_rate !== null), over = rows.filter((r) => r.over_refusal_rate !== null);
  if (dis.length) series.push({ name: 'answers to disallowed requests', x: dis.map((r) => r.step), y: dis.map((r) => r.disallowed_answer_rate!) });
  if (over.length) series.push({ name: 'refusals of allowed requests', x: over.map((r) => r.step), y: over.map((r) => r.over_refusal_rate!) });
  if (series.length) {
    const ref = lineChart({ title: 'Refusal behaviour on the rollout batch', xLabel: 'PPO step', yLabel: 'rate', series, yDomain: [0, 1] });
    out.push((await writeChart(join(dir, 'ppo-refusals'), ref)).png);
  }
  if (validation.length > 0) {
    const vx = validation.map((r) => r.step);
    const vs = [{ name: 'validation reward (mean over kinds)', x: vx, y: validation.map((r) => r.score) }];
    const vd = validation.filter((r) => r.disallowed_answer_rate !== null), vo = validation.filter((r) => r.over_refusal_rate !== null);
    if (vd.length) vs.push({ name: 'answers to disallowed requests', x: vd.map((r) => r.step), y: vd.map((r) => r.disallowed_answer_rate!) });
    if (vo.length) vs.push({ name: 'refusals of allowed requests', x: vo.map((r) => r.step), y: vo.map((r) => r.over_refusal_rate!) });
    const vc = lineChart({ title: `Validation (greedy, unseen phrasings); saved policy: step ${selectedStep ?? validation[validation.length - 1]!.step}`, xLabel: 'PPO step', yLabel: 'reward / rate', series: vs });
    out.push((await writeChart(join(dir, 'ppo-validation'), vc)).png);
  }
  return out;
}

/**
 * A zero-shot rubric grader from a local GPT: scores " A".." D" after the rubric prompt
 * (left-truncated to the context), for `RuleRewardModel` with `grader: 'model'`.
 */
export function gptGraderModel(gpt: GPT, tok: Tokenizer): GraderModel {
  return {
    score: async (prompt, continuations) => noGrad(() => continuations.map((c) => {
      const ctx = tok.encode(prompt), cont = tok.encode(c);
      const T = gpt.config.contextLength;
      const ids = [...ctx, ...cont].slice(-T);
      const start = ids.length - cont.length;
      const batch: SeqBatch = { B: 1, T: ids.length, ids: Int32Array.from(ids), targets: new Int32Array(ids.length).fill(-100), last: Int32Array.of(ids.length - 1) };
      for (let t = Math.max(0, start - 1); t < ids.length - 1; t++) batch.targets[t] = ids[t + 1]!;
      return host(tokenLogprobs(gpt, batch).logp).reduce((a, b) => a + b, 0);
    })),
  };
}
