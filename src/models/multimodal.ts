/**
 * The multimodal model: a ViT encoder and an MLP projector (src/models/vit.ts) in front of the GPT.
 * Prompts are rendered with THE chat template (src/tokenizer/chat.ts); each `<|image|>` token is
 * expanded to `imageTokens` = (S/P)² placeholder positions, and the projected patch embeddings of
 * that image replace the token embeddings there (GPT `splice`; the KV-cache Decoder's `embeds` at
 * inference). Any number of images per prompt, anywhere in the text (LLaVA style).
 *
 *   "<|user|>" [img₁: M positions] "what is left of" [img₂: M positions] "?<|end|><|assistant|>" answer "<|end|>"
 *
 * The loss covers text targets only: a position's target is the next token when that token is
 * assistant output (the answer and its `<|end|>`), else ignoreIndex -100; image and prompt positions
 * are never targets. Only the target rows go through the output head.
 *
 * Checkpoint directory: config.json `{ model: GPTConfig, vision: VisionConfig, ... }`, one
 * model.safetensors with the GPT's tensors (src/models/gpt.ts names) plus `vision.*` and `projector.*`
 * (src/models/vit.ts), and tokenizer.json. A text-only loader reading the same directory finds its
 * tensors and ignores the others.
 *
 * `MultimodalModel` also implements the serving contract of src/serve/model.ts (`InferenceModel`:
 * newSequence / step / release, images per step item) structurally, without importing src/serve.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor, Rng, noGrad } from '../tensor/index.ts';
import * as ops from '../tensor/ops.ts';
import type { Param } from '../nn/layers.ts';
import { GPT, type ForwardOptions } from './gpt.ts';
import { Decoder, type KVCache, type DecodeItem } from './decoder.ts';
import { parseGPTConfig, type GPTConfig } from './config.ts';
import { ViT, Projector, parseVisionConfig, imageTokenCount, type VisionConfig } from './vit.ts';
import { sampleToken } from './sampling.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { renderChat, chatStopTokenIds, type ChatMessage, type ChatEncoder } from '../tokenizer/chat.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../io/safetensors.ts';
import { writeJsonAtomic, writeFileAtomic } from '../util/fs.ts';
import { InputError, OpError } from '../util/errors.ts';

/** config.json of a multimodal model directory (other keys, e.g. `train`, are kept alongside). */
export interface MultimodalConfig {
  model: GPTConfig;
  vision: VisionConfig;
}

/** Validates `{model, vision}`; errors name the bad fields. */
export function parseMultimodalConfig(obj: unknown, source = 'config'): MultimodalConfig {
  if (typeof obj !== 'object' || obj === null) throw new InputError(`${source}: expected an object with 'model' and 'vision'`);
  const o = obj as Record<string, unknown>;
  if (o.vision === undefined) throw new InputError(`${source}: no 'vision' section — not a multimodal model (text-only models have no image encoder)`);
  return { model: parseGPTConfig(o.model, source), vision: parseVisionConfig(o.vision, source) };
}

/** One content part of a user message as the library takes it: text, or an image's (3, S, S) normalised pixels. */
export type ContentPart = { type: 'text'; text: string } | { type: 'image'; pixels: Float32Array };

/** A rendered conversation before image expansion: one `<|image|>` id per image. */
export interface Example {
  ids: number[];
  /** 1 where the token is assistant output to learn. */
  learn: Uint8Array;
  /** (3, S, S) pixels per `<|image|>`, in order. */
  images: Float32Array[];
}

/** Renders chat messages (image parts carry pixels) into an Example with THE chat template. */
export function chatExample(enc: ChatEncoder, messages: ChatMessage<Float32Array>[], opts: { addGenerationPrompt?: boolean } = {}): Example {
  const r = renderChat(enc, messages, opts);
  return { ids: r.ids, learn: r.assistantMask, images: r.images };
}

/** A padded batch with images expanded to their positions. */
export interface MMBatch {
  B: number;
  T: number;
  /** (B, T) token ids; image positions hold the `<|image|>` id, padding `<|pad|>`. */
  ids: Int32Array;
  /** (B, T) next-token targets, -100 where nothing is learned. */
  targets: Int32Array;
  /** Flat positions b·T + t of the image slots, image after image (M per image). */
  imagePositions: Int32Array;
  /** (N, 3, S, S) pixels of the N images, in the order of `imagePositions`. */
  pixels: Float32Array;
  nImages: number;
  /**
   * Per example, the flat rows b·T + t whose target is the first token of an assistant turn, turn
   * by turn (where a training loss can add a question's answer prior, src/train/answer-prior.ts).
   */
  answerStarts?: number[][];
}

/** Token ids the model needs from its tokenizer. */
export interface SpecialIds {
  image: number;
  pad: number;
}

/**
 * Expands each example's images to M positions, pads to the longest sequence (or `T`) and builds
 * next-token targets on assistant tokens only. Throws InputError when a sequence is longer than
 * `contextLength`.
 */
export function collate(examples: Example[], special: SpecialIds, vision: VisionConfig, contextLength: number, T?: number): MMBatch {
  if (examples.length === 0) throw new InputError('collate: no examples');
  const M = imageTokenCount(vision), px = 3 * vision.imageSize * vision.imageSize;
  const expanded = examples.map((ex, e) => {
    const nImg = ex.ids.filter((t) => t === special.image).length;
    if (nImg !== ex.images.length) throw new InputError(`example ${e}: ${nImg} <|image|> tokens but ${ex.images.length} images`);
    if (ex.learn.length !== ex.ids.length) throw new InputError(`example ${e}: learn mask has ${ex.learn.length} entries for ${ex.ids.length} tokens`);
    const ids: number[] = [], learn: number[] = [], slots: number[] = [];
    ex.ids.forEach((t, i) => {
      if (t === special.image) for (let j = 0; j < M; j++) { slots.push(ids.length); ids.push(t); learn.push(0); }
      else { ids.push(t); learn.push(ex.learn[i]!); }
    });
    if (ids.length > contextLength) {
      throw new InputError(`example ${e}: ${ids.length} positions (${nImg} image(s) × ${M} + ${ex.ids.length - nImg} tokens) exceed the context length ${contextLength}`);
    }
    ex.images.forEach((p, i) => {
      if (p.length !== px) throw new InputError(`example ${e}: image ${i} has ${p.length} values, expected 3×${vision.imageSize}×${vision.imageSize} = ${px}`);
    });
    return { ids, learn, slots };
  });
  const len = T ?? Math.max(...expanded.map((x) => x.ids.length));
  if (len > contextLength) throw new InputError(`collate: T = ${len} exceeds the context length ${contextLength}`);
  const B = examples.length;
  const ids = new Int32Array(B * len).fill(special.pad), targets = new Int32Array(B * len).fill(-100);
  const positions: number[] = [];
  const nImages = examples.reduce((s, ex) => s + ex.images.length, 0);
  const pixels = new Float32Array(nImages * px);
  let img = 0;
  const answerStarts: number[][] = [];
  expanded.forEach((x, b) => {
    if (x.ids.length > len) throw new InputError(`example ${b}: ${x.ids.length} positions exceed T = ${len}`);
    x.ids.forEach((t, i) => { ids[b * len + i] = t; });
    const starts: number[] = [];
    for (let i = 0; i + 1 < x.ids.length; i++) {
      if (!x.learn[i + 1]) continue;
      targets[b * len + i] = x.ids[i + 1]!;
      if (!x.learn[i]) starts.push(b * len + i);
    }
    answerStarts.push(starts);
    for (const s of x.slots) positions.push(b * len + s);
    for (const p of examples[b]!.images) pixels.set(p, (img++) * px);
  });
  return { B, T: len, ids, targets, imagePositions: Int32Array.from(positions), pixels, nImages, answerStarts };
}

/** The KV-cache state of one sequence being served. */
export class MMSequence {
  constructor(readonly cache: KVCache) {}
  /** Positions held so far (an image counts as its M positions). */
  get length(): number { return this.cache.length; }
}

/** One sequence's part of a batched inference step (the shape of src/serve/model.ts StepItem). */
export interface MMStepItem {
  seq: { readonly length: number };
  tokens: number[];
  images?: { pixels: Float32Array }[];
  allLogits?: boolean;
}

export interface AnswerOptions {
  /** Most tokens to generate (default 32). */
  maxTokens?: number;
  /** 0 = greedy (default). */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Called with each new piece of text as it is generated (streaming). */
  onText?: (text: string) => void;
  /** A system message placed before the user message. */
  system?: string;
}

/** What the model needs from a tokenizer (src/tokenizer Tokenizer satisfies it). */
export interface MMTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
  specialTokenId(name: string): number;
  readonly vocabSize: number;
}

/** GPT + ViT + projector, trained and served as one model. */
export class MultimodalModel {
  readonly gpt: GPT;
  readonly vit: ViT;
  readonly projector: Projector;
  /** Positions one image occupies. */
  readonly imageTokens: number;
  readonly name: string;
  /** Where the training prompts put the image (loadMultimodal reads it from config.json: trainedImagePlacement). */
  imagePlacement: 'first' | 'last' = 'first';
  private decoder: Decoder | null = null;

  constructor(readonly config: MultimodalConfig, seed = 0, private readonly tok: MMTokenizer | null = null, name = 'lumen-mm') {
    this.gpt = new GPT(config.model, seed);
    // A separate generator: the GPT's weights equal those of a text GPT built with the same seed.
    const rng = new Rng((seed ^ 0x5eed1) >>> 0);
    this.vit = new ViT(config.vision, rng, config.model.initStd);
    this.projector = new Projector(config.vision.width, config.model.width, rng, config.model.initStd);
    this.imageTokens = imageTokenCount(config.vision);
    this.name = name;
  }

  get training(): boolean { return this.gpt.training; }
  set training(v: boolean) { this.gpt.training = v; }

  // ---- parameters ------------------------------------------------------------------------------

  /** Every parameter: the GPT's, then `vision.*`, then `projector.*`. */
  params(): Param[] {
    return [...this.gpt.params(), ...this.vit.params(), ...this.projector.params()];
  }

  /** name → tensor, for checkpoints. */
  namedTensors(): Map<string, Tensor> {
    return new Map(this.params().map((p) => [p.name, p.tensor]));
  }

  // ---- training-time forward -------------------------------------------------------------------

  /** Image embeddings in the LM space: pixels (N, 3, S, S) → (N, M, C). */
  encodeImages(pixels: Tensor): Tensor {
    return this.projector.forward(this.vit.forward(pixels));
  }

  /**
   * Final hidden states (B, T, C) of a batch, image embeddings spliced in; with `rows` (flat
   * b·T + t, increasing) only those rows, (n, C), computed as `GPT.hiddenAt` does.
   */
  hidden(batch: MMBatch, opts: { dropoutSeed?: number; onImages?: (emb: Tensor) => void; rows?: Int32Array } = {}): Tensor {
    const c = this.config, S = c.vision.imageSize;
    const ids = Tensor.from(batch.ids, [batch.B, batch.T]);
    let fwd: ForwardOptions = { dropoutSeed: opts.dropoutSeed };
    if (batch.nImages > 0) {
      const emb = this.encodeImages(Tensor.from(batch.pixels, [batch.nImages, 3, S, S])); // (N, M, C)
      opts.onImages?.(emb);
      fwd = { ...fwd, splice: { index: batch.imagePositions, values: ops.reshape(emb, [batch.nImages * this.imageTokens, c.model.width]) } };
    }
    return opts.rows ? this.gpt.hiddenAt(ids, opts.rows, fwd) : this.gpt.hidden(ids, fwd);
  }

  /** Logits (B, T, V) at every position. */
  forward(batch: MMBatch): Tensor {
    return this.gpt.logits(this.hidden(batch));
  }

  /**
   * Cross-entropy over the text targets of the batch; the last block, the final norm and the
   * output head run only at the target rows (`GPT.hiddenAt`).
   * `weighting` 'token' (default): the mean over target tokens; 'sample': the mean over sequences of
   * each sequence's mean, so a 4-token answer weighs as much as a 1-token one.
   * `logitBias`: flat row b·T + t → a (V) vector added to that row's logits before the
   * cross-entropy (a fixed term: no gradient flows into it). Rows that are not targets are ignored.
   * `imageLoss`: an extra term computed from the batch's image embeddings (N, M, C), added to the
   * text loss when it returns a tensor (src/train/object-probe.ts).
   */
  loss(batch: MMBatch, opts: { dropoutSeed?: number; weighting?: 'token' | 'sample'; logitBias?: ReadonlyMap<number, Float32Array>; imageLoss?: (emb: Tensor) => Tensor | null } = {}): Tensor {
    let extra: Tensor | null = null;
    const text = this.textLoss(batch, opts, opts.imageLoss ? (emb) => { extra = opts.imageLoss!(emb); } : undefined);
    return extra ? ops.add(text, extra) : text;
  }

  private textLoss(batch: MMBatch, opts: { dropoutSeed?: number; weighting?: 'token' | 'sample'; logitBias?: ReadonlyMap<number, Float32Array> }, onImages?: (emb: Tensor) => void): Tensor {
    const rows: number[] = [], tg: number[] = [];
    batch.targets.forEach((t, i) => { if (t !== -100) { rows.push(i); tg.push(t); } });
    if (rows.length === 0) throw new InputError('multimodal loss: the batch has no text targets (no assistant tokens)');
    const sel = this.hidden(batch, { dropoutSeed: opts.dropoutSeed, onImages, rows: Int32Array.from(rows) }); // (n, C): the target rows
    let logits = this.gpt.logits(sel);                                                                        // (n, V)
    if (opts.logitBias && opts.logitBias.size > 0) {
      const V = logits.shape[1]!, bias = new Float32Array(rows.length * V);
      rows.forEach((r, k) => {
        const b = opts.logitBias!.get(r);
        if (!b) return;
        if (b.length !== V) throw new InputError(`multimodal loss: logit bias of row ${r} has ${b.length} entries, expected ${V}`);
        bias.set(b, k * V);
      });
      logits = ops.add(logits, Tensor.from(bias, [rows.length, V]));
    }
    const targets = Tensor.from(Int32Array.from(tg), [tg.length]);
    if ((opts.weighting ?? 'token') === 'token') return ops.crossEntropy(logits, targets);
    const perSeq = new Map<number, number>();
    for (const r of rows) { const b = Math.floor(r / batch.T); perSeq.set(b, (perSeq.get(b) ?? 0) + 1); }
    const w = Float32Array.from(rows, (r) => 1 / (perSeq.get(Math.floor(r / batch.T))! * perSeq.size));
    return ops.sum(ops.mul(ops.crossEntropy(logits, targets, { reduction: 'none' }), Tensor.from(w, [w.length])));
  }

  // ---- inference (the InferenceModel contract of src/serve/model.ts) --------------------------

  get tokenizer(): MMTokenizer {
    if (!this.tok) throw new InputError(`model '${this.name}' has no tokenizer (load it from a directory with tokenizer.json)`);
    return this.tok;
  }
  get contextLength(): number { return this.config.model.contextLength; }
  get vocabSize(): number { return this.config.model.vocabSize; }
  get vision(): { imageTokens: number; imageSize: number; imagePlacement: 'first' | 'last' } {
    return { imageTokens: this.imageTokens, imageSize: this.config.vision.imageSize, imagePlacement: this.imagePlacement };
  }

  newSequence(): MMSequence {
    this.decoder ??= new Decoder(this.gpt);
    return new MMSequence(this.decoder.newCache());
  }

  release(seq: { readonly length: number }): void {
    // The cache is garbage once unreferenced; clear it so a stale handle cannot be reused by mistake.
    if (seq instanceof MMSequence) seq.cache.length = Number.MAX_SAFE_INTEGER;
  }

  /**
   * Feeds new tokens (and the images of their `<|image|>` tokens) to several sequences in one
   * batched forward; returns logits per item: the last position, or every new position when
   * `allLogits` (an image contributes M rows).
   */
  step(items: MMStepItem[]): Float32Array[] {
    const imageId = this.tokenizer.specialTokenId('<|image|>');
    const c = this.config, S = c.vision.imageSize, px = 3 * S * S, C = c.model.width, M = this.imageTokens;
    this.decoder ??= new Decoder(this.gpt);
    return noGrad(() => {
      const all: Float32Array[] = [];
      items.forEach((it, i) => {
        const n = it.tokens.filter((t) => t === imageId).length;
        if (n !== (it.images?.length ?? 0)) throw new InputError(`step item ${i}: ${n} <|image|> tokens but ${it.images?.length ?? 0} images`);
        for (const [j, im] of (it.images ?? []).entries()) {
          if (im.pixels.length !== px) throw new InputError(`step item ${i}, image ${j}: ${im.pixels.length} values, expected 3×${S}×${S} = ${px}`);
          all.push(im.pixels);
        }
      });
      // Every image of the step through the encoder at once: (N, M, C) on the host.
      let emb: Float32Array | null = null;
      if (all.length > 0) {
        const pix = new Float32Array(all.length * px);
        all.forEach((p, j) => pix.set(p, j * px));
        emb = this.encodeImages(Tensor.from(pix, [all.length, 3, S, S])).toArray() as Float32Array;
      }
      let img = 0;
      const dec: DecodeItem[] = items.map((it) => {
        if (!(it.seq instanceof MMSequence)) throw new OpError('multimodal.step', 'a sequence that this model did not create');
        if (it.seq.cache.length > it.seq.cache.capacity) throw new OpError('multimodal.step', 'the sequence was released');
        const tokens: number[] = [], embeds: { index: number; values: Float32Array }[] = [];
        for (const t of it.tokens) {
          if (t === imageId) {
            for (let j = 0; j < M; j++) {
              embeds.push({ index: tokens.length, values: emb!.subarray((img * M + j) * C, (img * M + j + 1) * C) });
              tokens.push(t);
            }
            img++;
          } else tokens.push(t);
        }
        return { cache: it.seq.cache, tokens, embeds, allLogits: it.allLogits };
      });
      return this.decoder!.step(dec);
    });
  }

  // ---- answering -------------------------------------------------------------------------------

  /** The prompt of one user turn with a generation prompt, as chat-template ids and images. */
  promptFor(parts: ContentPart[], system?: string): { ids: number[]; images: Float32Array[] } {
    const content = parts.map((p, i) => {
      if (p.type === 'text') return { type: 'text' as const, text: p.text };
      if (p.type === 'image') return { type: 'image' as const, image: p.pixels };
      throw new InputError(`content part ${i}: type must be 'text' or 'image', got '${String((p as { type: unknown }).type)}'`);
    });
    const messages: ChatMessage<Float32Array>[] = [];
    if (system) messages.push({ role: 'system', content: system });
    messages.push({ role: 'user', content });
    const r = renderChat(this.tokenizer, messages, { addGenerationPrompt: true });
    return { ids: r.ids, images: r.images };
  }

  /** Answers one user turn of text and images (OpenAI-style content parts); streams through `onText`. */
  answer(parts: ContentPart[], opts: AnswerOptions = {}): string {
    return this.answerBatch([parts], opts)[0]!;
  }

  /** Answers several prompts at once (one batched forward per generated token). */
  answerBatch(prompts: ContentPart[][], opts: AnswerOptions = {}): string[] {
    const tok = this.tokenizer;
    const maxTokens = opts.maxTokens ?? 32, temperature = opts.temperature ?? 0;
    const stops = new Set(chatStopTokenIds(tok));
    const banned = ['<|pad|>', '<|image|>', '<|system|>', '<|user|>', '<|assistant|>'].map((s) => tok.specialTokenId(s));
    const rng = new Rng(opts.seed ?? 0);
    const seqs = prompts.map(() => this.newSequence());
    const items: MMStepItem[] = prompts.map((parts, i) => {
      const p = this.promptFor(parts, opts.system);
      const positions = p.ids.length + p.images.length * (this.imageTokens - 1);
      if (positions >= this.contextLength) throw new InputError(`prompt ${i}: ${positions} positions leave no room to answer within the context length ${this.contextLength}`);
      return { seq: seqs[i]!, tokens: p.ids, images: p.images.map((pixels) => ({ pixels })) };
    });
    const out: number[][] = prompts.map(() => []);
    const emitted = prompts.map(() => '');
    let active = prompts.map((_, i) => i);
    let logits = this.step(items);
    for (let n = 0; n < maxTokens && active.length > 0; n++) {
      const next: number[] = [];
      const still: number[] = [];
      active.forEach((i, j) => {
        const row = logits[j]!;
        for (const b of banned) row[b] = -Infinity;
        const t = sampleToken(row, { temperature, topK: opts.topK, topP: opts.topP }, rng);
        if (stops.has(t)) return;
        out[i]!.push(t);
        if (opts.onText && prompts.length === 1) {
          const text = tok.decode(out[i]!);
          if (!text.endsWith('\uFFFD')) { opts.onText(text.slice(emitted[i]!.length)); emitted[i] = text; }
        }
        if (seqs[i]!.length + 1 < this.contextLength) { still.push(i); next.push(t); }
      });
      active = still;
      if (active.length === 0 || n + 1 >= maxTokens) break;
      logits = this.step(active.map((i, j) => ({ seq: seqs[i]!, tokens: [next[j]!] })));
    }
    for (const s of seqs) this.release(s);
    const texts = out.map((ids) => tok.decode(ids));
    if (opts.onText && prompts.length === 1 && texts[0]!.length > emitted[0]!.length) opts.onText(texts[0]!.slice(emitted[0]!.length));
    return texts;
  }
}

// ---- checkpoint directory --------------------------------------------------------------------

/** Writes config.json (`{...extra, model, vision}`), model.safetensors and (when given) tokenizer.json. */
export function saveMultimodal(dir: string, model: MultimodalModel, extra: Record<string, unknown> = {}, tokenizerJson?: string): void {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, t] of model.namedTensors()) tensors[name] = { shape: t.shape, data: t.toArray() as Float32Array };
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt', producer: 'lumen', kind: 'multimodal' });
  writeJsonAtomic(join(dir, 'config.json'), { ...extra, model: model.config.model, vision: model.config.vision });
  if (tokenizerJson) {
    const dst = join(dir, 'tokenizer.json');
    if (tokenizerJson !== dst) writeFileAtomic(dst, readFileSync(tokenizerJson));
  }
}

/** config.json of a model directory, validated as multimodal; other keys kept. */
export function readMultimodalConfig(dir: string): MultimodalConfig & Record<string, unknown> {
  const p = join(dir, 'config.json');
  if (!existsSync(p)) throw new InputError(`${dir} is not a Lumen model directory (no config.json)`);
  let raw: Record<string, unknown>;
  try { raw = JSON.parse(readFileSync(p, 'utf8')); } catch (e) { throw new InputError(`${p}: not valid JSON (${(e as Error).message})`); }
  return { ...raw, ...parseMultimodalConfig(raw, p) };
}

/**
 * Where the model's training prompts put the image (`train.imagePlacement` of its config.json):
 * 'last' (question, then image) or 'first' (image, then question); 'mixed' trained both orders and
 * a model without a training record counts as 'first'. Prompts built for the model follow it.
 */
export function trainedImagePlacement(cfg: Record<string, unknown>): 'first' | 'last' {
  const train = cfg.train as { imagePlacement?: unknown } | undefined;
  return train?.imagePlacement === 'last' ? 'last' : 'first';
}

/** Copies stored tensors into the model's (names and shapes must match); `prefix` is prepended to the names looked up. */
export function copyWeights(named: Map<string, Tensor>, file: Map<string, { shape: number[]; data: ArrayLike<number> }>, source: string, prefix = ''): void {
  for (const [name, t] of named) {
    const s = file.get(prefix + name);
    if (!s) throw new InputError(`${source}: missing tensor '${prefix + name}'`);
    if (s.shape.length !== t.shape.length || s.shape.some((d, i) => d !== t.shape[i])) {
      throw new InputError(`${source}: tensor '${prefix + name}' has shape [${s.shape.join(', ')}], the model expects [${t.shape.join(', ')}]`);
    }
    (t.backend.toHost(t.buf) as Float32Array).set(s.data as Float32Array);
  }
}

/** Loads a multimodal model (config, weights, and tokenizer.json when present) from a directory. */
export function loadMultimodal(dir: string): MultimodalModel {
  const cfg = readMultimodalConfig(dir);
  const tj = join(dir, 'tokenizer.json');
  const tok = existsSync(tj) ? Tokenizer.load(dir) : null;
  const model = new MultimodalModel({ model: cfg.model, vision: cfg.vision }, 0, tok, dir.replace(/\/+$/, '').split('/').pop() || 'lumen-mm');
  model.imagePlacement = trainedImagePlacement(cfg);
  const p = join(dir, 'model.safetensors');
  if (!existsSync(p)) throw new InputError(`${dir}: no model.safetensors`);
  copyWeights(model.namedTensors(), readSafetensors(p).tensors, p);
  return model;
}
