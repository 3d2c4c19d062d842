/**
 * Pieces shared by the alignment training loops (SFT, reward model, DPO, PPO): loading a chat
 * model with its tokenizer, turning loader messages into the one chat template, padded
 * batches of (prompt, response) sequences, per-token log-probabilities with gradients,
 * numerically safe softplus, metrics.jsonl rows and the AdamW setup.
 *
 * Shapes: B sequences, T time, C width, V vocabulary, n = number of learned (target) tokens.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor, ops } from '../tensor/index.ts';
import { GPT } from '../models/gpt.ts';
import { loadModel, readModelConfig, type ModelDirConfig } from '../train/checkpoint.ts';
import { AdamW, learningRate } from '../train/optimizer.ts';
import type { Param } from '../nn/layers.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { renderChat, type ChatMessage as TemplateMessage } from '../tokenizer/chat.ts';
import { InputError } from '../util/errors.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { loadConversations, loadPreferences, parseConversations, parsePreferences, type Conversation, type Message, type Preference } from './loaders.ts';
import { generateAlignmentData, type AlignmentData } from './data-gen.ts';
import { loadPolicy } from './policy.ts';
import { toJsonl } from './jsonl.ts';

/** A GPT loaded from a model directory, with its tokenizer and config.json. */
export interface ChatModel { model: GPT; tok: Tokenizer; config: ModelDirConfig; dir: string }

/** Loads `dir` (config.json, model.safetensors, tokenizer.json). */
export function loadChatModel(dir: string, what = '--model'): ChatModel {
  if (!existsSync(join(dir, 'config.json'))) throw new InputError(`${what} ${dir}: not a Lumen model directory (no config.json)`);
  if (!existsSync(join(dir, 'tokenizer.json'))) throw new InputError(`${what} ${dir}: no tokenizer.json next to the model`);
  const config = readModelConfig(dir);
  if (config['kind'] === 'multimodal') throw new InputError(`${what} ${dir}: a multimodal model; these alignment commands train text-only GPTs (the multimodal trainer is src/train/multimodal.ts)`);
  const tok = Tokenizer.load(dir);
  const model = loadModel(dir);
  if (tok.vocabSize > model.config.vocabSize) throw new InputError(`${what} ${dir}: tokenizer has ${tok.vocabSize} ids but the model only ${model.config.vocabSize}`);
  for (const s of ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>', '<|pad|>']) {
    try { tok.specialTokenId(s); } catch { throw new InputError(`${what} ${dir}: the tokenizer lacks the chat token ${s}`); }
  }
  return { model, tok, config, dir };
}

/** An image reference kept by the template (the multimodal trainer resolves it to pixels). */
export interface ImageRef { url: string }

/** Loader messages → chat-template messages; images stay as references. */
export function toTemplateMessages(messages: readonly Message[]): TemplateMessage<ImageRef>[] {
  return messages.map((m) => ({
    role: m.role,
    content: m.content.map((p) => (p.type === 'text' ? { type: 'text' as const, text: p.text } : { type: 'image' as const, image: { url: p.url } })),
  }));
}

/** Whether any message has an image part. */
export function hasImages(messages: readonly Message[]): boolean {
  return messages.some((m) => m.content.some((p) => p.type === 'image'));
}

/** A tokenized sequence: ids and a 0/1 mask of the tokens to learn/score (same length). */
export interface Sequence { ids: number[]; learn: Uint8Array }

/** Renders prompt messages + a response (assistant messages) as one sequence; only the response is learned. */
export function renderPair(tok: Tokenizer, prompt: readonly Message[], response: readonly Message[]): Sequence {
  const r = renderChat(tok, [...toTemplateMessages(prompt), ...toTemplateMessages(response)]);
  const p = renderChat(tok, toTemplateMessages(prompt)).ids.length;
  const learn = new Uint8Array(r.ids.length);
  for (let i = p; i < r.ids.length; i++) learn[i] = r.assistantMask[i]!;
  return { ids: r.ids, learn };
}

/** A user prompt (plain text) rendered with the generation prompt `<|assistant|>`. */
export function renderPrompt(tok: Tokenizer, prompt: string | readonly Message[], system?: string): number[] {
  const msgs: TemplateMessage<ImageRef>[] = typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : toTemplateMessages(prompt);
  if (system) msgs.unshift({ role: 'system', content: system });
  return renderChat(tok, msgs, { addGenerationPrompt: true }).ids;
}

/**
 * A batch of sequences: ids (B, T), next-token targets (B, T) with -100 where nothing is learned,
 * and for each sequence the flat index of its last real token (for scalar heads). Padded
 * (`padBatch`), row b is sequence b. Packed (`packBatch`), rows hold several sequences and the
 * batch also has positions (B, T), an additive mask (B, 1, T, T) and the sequence of each flat
 * position (`seqAt`, -1 on padding). Either way `last.length` is the number of sequences.
 */
export interface SeqBatch {
  B: number; T: number; ids: Int32Array; targets: Int32Array; last: Int32Array;
  positions?: Int32Array; mask?: Float32Array; seqAt?: Int32Array;
}

/** A packed batch: rows of several conversations. */
export interface PackedBatch {
  B: number;
  T: number;
  /** (B, T) token ids (padding: `<|pad|>`). */
  ids: Int32Array;
  /** (B, T) next-token targets; -100 where the next token is not an assistant token of the same conversation. */
  targets: Int32Array;
  /** (B, T) positions, restarting at 0 for every conversation. */
  positions: Int32Array;
  /** (B, 1, T, T) additive mask: 0 within a conversation, −∞ across (padding is its own block). */
  mask: Float32Array;
  /** Learned tokens in the batch. */
  learned: number;
}

/** First-fit packing of sequence lengths into rows of capacity T; returns the sequence indices of each row, in order. */
export function packRows(lengths: readonly number[], T: number): number[][] {
  const rows: number[][] = [], room: number[] = [];
  lengths.forEach((n, i) => {
    if (n > T) throw new InputError(`packRows: sequence ${i} has ${n} tokens, more than the row length ${T}`);
    let r = room.findIndex((x) => x >= n);
    if (r < 0) { rows.push([]); room.push(T); r = rows.length - 1; }
    rows[r]!.push(i); room[r]! -= n;
  });
  return rows;
}

/** Builds the packed batch of `rows` (each a list of sequences) with row length T. */
export function buildPackedBatch(rows: readonly (readonly Sequence[])[], T: number, padId: number): PackedBatch {
  const B = rows.length;
  const ids = new Int32Array(B * T).fill(padId), targets = new Int32Array(B * T).fill(-100), positions = new Int32Array(B * T);
  const mask = new Float32Array(B * T * T).fill(-Infinity);
  let learned = 0;
  rows.forEach((row, b) => {
    const seg = new Int32Array(T).fill(-1);
    let t0 = 0;
    row.forEach((s, k) => {
      const n = s.ids.length;
      if (t0 + n > T) throw new InputError(`buildPackedBatch: row ${b} holds ${t0 + n} tokens, more than ${T}`);
      for (let i = 0; i < n; i++) {
        ids[b * T + t0 + i] = s.ids[i]!; positions[b * T + t0 + i] = i; seg[t0 + i] = k;
        if (i + 1 < n && s.learn[i + 1]) { targets[b * T + t0 + i] = s.ids[i + 1]!; learned++; }
      }
      t0 += n;
    });
    for (let i = t0; i < T; i++) positions[b * T + i] = i - t0;
    for (let q = 0; q < T; q++) for (let k = 0; k < T; k++) if (seg[q] === seg[k]) mask[(b * T + q) * T + k] = 0;
  });
  return { B, T, ids, targets, positions, mask, learned };
}

/**
 * Sequences packed first-fit (in the given order) into rows of `rowLen` tokens (default twice the
 * context `maxLen`), for
 * `tokenLogprobs`: positions restart at 0 for each sequence and a block-diagonal mask keeps them
 * apart, so each sequence is computed as it would be alone. `order` lists the sequences in the
 * flat order of the batch (and of its `targetRows`); `last` and `targetRows(..).seqOf` refer to
 * sequences by their index in `seqs`. Rows may be longer than the model's context
 * (each sequence must fit in it): padded to its longest sequence, a batch of RLHF rollouts was
 * 41% padding; packed into rows of twice the context, 11%.
 */
export function packBatch(seqs: readonly Sequence[], padId: number, maxLen: number, rowLen = 2 * maxLen): SeqBatch & { order: number[] } {
  if (seqs.length === 0) throw new InputError('packBatch: no sequences');
  seqs.forEach((s) => { if (s.ids.length > maxLen) throw new InputError(`a sequence of ${s.ids.length} tokens exceeds the model's context of ${maxLen}`); });
  const rows = packRows(seqs.map((s) => s.ids.length), rowLen);
  const p = buildPackedBatch(rows.map((r) => r.map((i) => seqs[i]!)), rowLen, padId);
  // Trailing padding counts its positions on from 0 like a sequence; past the context they wrap.
  for (let i = 0; i < p.positions.length; i++) if (p.positions[i]! >= maxLen) p.positions[i] = p.positions[i]! % maxLen;
  const last = new Int32Array(seqs.length), seqAt = new Int32Array(p.B * rowLen).fill(-1);
  rows.forEach((r, b) => {
    let t = b * rowLen;
    for (const i of r) { seqAt.fill(i, t, t + seqs[i]!.ids.length); t += seqs[i]!.ids.length; last[i] = t - 1; }
  });
  return { B: p.B, T: p.T, ids: p.ids, targets: p.targets, positions: p.positions, mask: p.mask, seqAt, last, order: rows.flat() };
}

/** Preference pairs as one packed batch: the chosen sequences, then the rejected ones. */
export function pairBatch(ps: readonly { chosen: Sequence; rejected: Sequence }[], padId: number, maxLen: number): SeqBatch {
  return packBatch([...ps.map((p) => p.chosen), ...ps.map((p) => p.rejected)], padId, maxLen);
}

/**
 * Pads sequences to the longest (right padding with `padId`). Position t predicts token t+1,
 * so targets[t] = ids[t+1] where learn[t+1] = 1. Sequences longer than `maxLen` are refused.
 */
export function padBatch(seqs: readonly Sequence[], padId: number, maxLen: number): SeqBatch {
  if (seqs.length === 0) throw new InputError('padBatch: no sequences');
  const T = Math.max(...seqs.map((s) => s.ids.length));
  if (T > maxLen) throw new InputError(`a sequence of ${T} tokens exceeds the model's context of ${maxLen}`);
  const B = seqs.length;
  const ids = new Int32Array(B * T).fill(padId), targets = new Int32Array(B * T).fill(-100), last = new Int32Array(B);
  seqs.forEach((s, b) => {
    for (let t = 0; t < s.ids.length; t++) ids[b * T + t] = s.ids[t]!;
    for (let t = 0; t + 1 < s.ids.length; t++) if (s.learn[t + 1]) targets[b * T + t] = s.ids[t + 1]!;
    last[b] = b * T + s.ids.length - 1;
  });
  return { B, T, ids, targets, last };
}

/** Flat rows (b*T + t) with a target, the targets there, and which sequence each row belongs to. */
export function targetRows(batch: SeqBatch): { rows: Int32Array; targets: Int32Array; seqOf: Int32Array } {
  const rows: number[] = [], tg: number[] = [], seq: number[] = [];
  for (let i = 0; i < batch.ids.length; i++) {
    if (batch.targets[i] !== -100) { rows.push(i); tg.push(batch.targets[i]!); seq.push(batch.seqAt ? batch.seqAt[i]! : Math.floor(i / batch.T)); }
  }
  return { rows: Int32Array.from(rows), targets: Int32Array.from(tg), seqOf: Int32Array.from(seq) };
}

/** Gathers rows (n) of a (N, C) tensor → (n, C), with gradients to the source. */
export function gatherRows(x2d: Tensor, rows: Int32Array): Tensor {
  return ops.embedding(x2d, Tensor.from(rows, [rows.length], x2d.backend));
}

/** Final hidden states (B·T, C) of a padded or packed batch. */
export function batchHidden(model: GPT, batch: SeqBatch): Tensor {
  const packed = batch.positions && batch.mask
    ? { positions: Tensor.from(batch.positions, [batch.B, batch.T]), mask: Tensor.from(batch.mask, [batch.B, 1, batch.T, batch.T]) } : {};
  return ops.reshape(model.hidden(Tensor.from(batch.ids, [batch.B, batch.T]), packed), [batch.B * batch.T, model.config.width]);
}

/**
 * Log-probabilities (n) of the target tokens of `batch` under `model` (its logits divided by
 * `temperature`, i.e. the distribution tokens were sampled from), in `targetRows` order, with
 * gradients; also the final hidden states (B·T, C) for heads on the same forward.
 */
export function tokenLogprobs(model: GPT, batch: SeqBatch, tr = targetRows(batch), temperature = 1): { logp: Tensor; hidden: Tensor } {
  const h = batchHidden(model, batch);
  if (tr.rows.length === 0) throw new InputError('the batch has no tokens to learn (no response tokens)');
  let logits = model.logits(gatherRows(h, tr.rows)); // (n, V)
  if (temperature !== 1) logits = ops.scalar('mul', logits, 1 / temperature);
  const nll = ops.crossEntropy(logits, Tensor.from(tr.targets, [tr.targets.length]), { reduction: 'none' }); // (n)
  return { logp: ops.neg(nll), hidden: h };
}

/** Sums per-token values (n) into per-sequence totals (B) with a (B, n) 0/1 matrix (keeps gradients). */
export function sumPerSequence(x: Tensor, seqOf: Int32Array, B: number): Tensor {
  const n = seqOf.length;
  const S = new Float32Array(B * n);
  for (let i = 0; i < n; i++) S[seqOf[i]! * n + i] = 1;
  return ops.reshape(ops.matmul(Tensor.from(S, [B, n], x.backend), ops.reshape(x, [n, 1])), [B]);
}

/**
 * softplus(x) = log(1 + eˣ) = max(x, 0) + log(1 + e^−|x|), exact and without overflow. The
 * branch (sign of x) is read on the host, so the gradient is σ(x) everywhere, including x = 0.
 */
export function softplusTensor(x: Tensor): Tensor {
  const v = x.toArray(), n = v.length;
  const pos = new Float32Array(n), sgn = new Float32Array(n);
  for (let i = 0; i < n; i++) { pos[i] = v[i]! >= 0 ? 1 : 0; sgn[i] = v[i]! >= 0 ? 1 : -1; }
  const P = Tensor.from(pos, x.shape, x.backend), S = Tensor.from(sgn, x.shape, x.backend);
  const absx = ops.mul(x, S);
  return ops.add(ops.mul(x, P), ops.log(ops.scalar('add', ops.exp(ops.neg(absx)), 1)));
}

/** Host copy of a float tensor. */
export function host(t: Tensor): Float32Array {
  return Float32Array.from(t.toArray());
}

/** AdamW for fine-tuning (decay on matrices). */
export function fineTuneOptimizer(params: Param[], lr: number, weightDecay = 0.0): AdamW {
  return new AdamW(params, { lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay, gradClip: 1 });
}

/** Learning rate at `step` (0-based): linear warmup, cosine to lr/10. */
export function fineTuneLr(step: number, lr: number, steps: number, warmup: number): number {
  return learningRate(step, { lr, minLr: lr / 10, warmupSteps: Math.min(warmup, Math.max(0, steps - 1)), totalSteps: steps });
}

/** Appends one JSON row to a metrics file. */
export function appendMetrics(path: string, row: Record<string, unknown>): void {
  appendFileSync(path, JSON.stringify(row) + '\n');
}

/** Starts a fresh metrics file (atomically empty). */
export function resetMetrics(path: string): void {
  writeFileAtomic(path, '');
}

/** Reads a metrics.jsonl file written by `appendMetrics`. */
export function readMetrics(path: string): Record<string, number>[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, number>);
}

/** A seeded shuffled order of 0..n-1 that repeats with a fresh shuffle each epoch. */
export class EpochSampler {
  private order: number[] = [];
  private pos = 0;
  constructor(private readonly n: number, private readonly rng: { shuffle<T>(a: T[]): T[] }) {
    if (n <= 0) throw new InputError('EpochSampler: no examples');
  }
  next(k: number): number[] {
    const out: number[] = [];
    while (out.length < k) {
      if (this.pos >= this.order.length) { this.order = this.rng.shuffle(Array.from({ length: this.n }, (_, i) => i)); this.pos = 0; }
      out.push(this.order[this.pos++]!);
    }
    return out;
  }
}

/** Splits indices 0..n-1 into train and held-out parts (seeded), holding out `frac` (at least 1 when n ≥ 2). */
export function holdOut(n: number, frac: number, rng: { shuffle<T>(a: T[]): T[] }): { train: number[]; held: number[] } {
  const idx = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const h = n >= 2 ? Math.max(1, Math.round(n * frac)) : 0;
  return { held: idx.slice(0, h), train: idx.slice(h) };
}

/** The generated alignment data for a policy file (default policy) and seed. */
export function generatedData(policyPath: string | undefined, seed: number): AlignmentData {
  return generateAlignmentData(policyPath ? loadPolicy(policyPath) : loadPolicy(), { seed });
}

/** Conversations from `--data FILE` or, with `generate`, from the policy's generated SFT data. */
export function conversationsFrom(data: string | undefined, generate: boolean, policyPath: string | undefined, seed: number): Conversation[] {
  if ((data === undefined) === !generate) throw new InputError('give exactly one of --data FILE.jsonl and --generate');
  if (data !== undefined) return loadConversations(data);
  return parseConversations(toJsonl(generatedData(policyPath, seed).sft), 'generated SFT data');
}

/** Preference pairs from `--data FILE` or, with `generate`, from the policy's generated pairs. */
export function preferencesFrom(data: string | undefined, generate: boolean, policyPath: string | undefined, seed: number): Preference[] {
  if ((data === undefined) === !generate) throw new InputError('give exactly one of --data FILE.jsonl and --generate');
  if (data !== undefined) return loadPreferences(data);
  return parsePreferences(toJsonl(generatedData(policyPath, seed).preferences), 'generated preference data');
}
