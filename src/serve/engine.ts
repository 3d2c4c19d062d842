/**
 * The inference engine: continuous batching over an `InferenceModel`.
 *
 * One scheduler loop owns the model. Each iteration it admits queued requests into the
 * running set (up to `maxSequences`), then makes ONE batched `model.step` holding one decode
 * token for every generating sequence plus prompt chunks of sequences still in prefill (long
 * prompts are split so a new arrival never stalls the others for long), then samples, streams
 * and retires sequences. A finished or cancelled sequence leaves the batch at once and its
 * slot goes to the next queued request. Between steps the loop yields to the event loop so
 * the HTTP server stays responsive.
 */
import { InputError, LumenError } from '../util/errors.ts';
import { Channel } from './channel.ts';
import type { ImageInput, InferenceModel, SequenceState, StepItem } from './model.ts';
import { Sampler, logSumExp, topLogprobs, type SamplingParams, type TokenLogprob } from './sampling.ts';
import { TextStream } from './text-stream.ts';
import { yieldToEventLoop } from '../util/event-loop.ts';

/** One generation request, in tokens. */
export interface GenerateRequest {
  /** Prompt token ids; each `<|image|>` id takes the next of `images`. */
  prompt: number[];
  images?: ImageInput[];
  /** Tokens to generate at most (0 = only score the prompt). Clamped to the context left. */
  maxTokens: number;
  sampling: SamplingParams;
  /** Strings that end generation; they and what follows are not part of the answer. */
  stop?: string[];
  /** Token ids that end generation (default: `<|end|>` and `<|endoftext|>`). */
  stopTokenIds?: number[];
  /** null/undefined: no logprobs; k >= 0: each generated token's logprob and its k best alternatives. */
  logprobs?: number | null;
  /** Also compute each prompt token's logprob (scoring, `echo`); alternatives as `logprobs`. */
  promptLogprobs?: boolean;
  /** Aborting it cancels the request and frees its slot at once. */
  signal?: AbortSignal;
  /** Keep an event per token for `for await` (streaming); otherwise only the result is kept. */
  stream?: boolean;
}

/** A generated (or prompt) token with its log-probability and best alternatives. */
export interface TokenInfo {
  id: number;
  /** NaN when logprobs were not requested. */
  logprob: number;
  top: TokenLogprob[];
}

/** Streamed progress: newly releasable text and the tokens generated since the last event. */
export interface GenerationEvent {
  text: string;
  tokens: TokenInfo[];
  /** Once, before any token, when prompt logprobs were asked for: one entry per prompt token. */
  promptLogprobs?: (TokenInfo | null)[];
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface GenerationResult {
  text: string;
  /** Generated tokens (stop tokens excluded), with logprobs when requested. */
  tokens: TokenInfo[];
  finishReason: FinishReason;
  /** Prompt length in model positions (an image counts as its positions). */
  promptTokens: number;
  /** Tokens sampled, including a final stop token. */
  completionTokens: number;
  /** With `promptLogprobs`: one entry per prompt token; null for the first token and image tokens. */
  promptLogprobs?: (TokenInfo | null)[];
  /** Milliseconds from submission to the first generated token (NaN if none). */
  ttftMs: number;
}

/** Callbacks for metrics. */
export interface EngineHooks {
  onFirstToken?(ms: number): void;
  onToken?(msSinceLast: number): void;
  onFinish?(r: GenerationResult): void;
}

export interface EngineOptions {
  /** Sequences generating at once (the batch). */
  maxSequences?: number;
  /** Requests waiting for a slot; beyond this `submit` throws EngineBusyError. */
  maxQueue?: number;
  /** Most prompt positions one sequence feeds in one step. */
  prefillChunk?: number;
  /** Most positions (decode + prefill) in one step. */
  maxBatchTokens?: number;
  hooks?: EngineHooks;
}

/** The queue is full (HTTP 429). */
export class EngineBusyError extends LumenError {}
/** The engine is shutting down (HTTP 503). */
export class EngineClosedError extends LumenError {}

/** A submitted request: iterate it for events (when `stream`), await `result` for the outcome. */
export class Generation implements AsyncIterable<GenerationEvent> {
  readonly result: Promise<GenerationResult>;
  /** @internal */ readonly events = new Channel<GenerationEvent>();
  /** @internal */ settle!: (r: GenerationResult) => void;
  /** @internal */ fail!: (e: unknown) => void;

  constructor() {
    this.result = new Promise((res, rej) => { this.settle = res; this.fail = rej; });
    this.result.catch(() => {}); // the owner awaits it; avoid unhandled rejections when only iterating
  }

  [Symbol.asyncIterator](): AsyncIterator<GenerationEvent> { return this.events[Symbol.asyncIterator](); }
}

/** Per-sequence state inside the engine. */
interface Active {
  req: GenerateRequest;
  gen: Generation;
  seq: SequenceState | null;
  sampler: Sampler;
  text: TextStream;
  stopIds: Set<number>;
  maxTokens: number;
  positions: number;
  /** Prompt tokens fed so far, and images consumed. */
  fed: number;
  imagesFed: number;
  /** Token to feed next step (decode phase). */
  next: number | null;
  tokens: TokenInfo[];
  completion: number;
  promptLogprobs: (TokenInfo | null)[] | undefined;
  /** Last logits row of the previous prompt chunk (predicts the next chunk's first token). */
  prevRow: Float32Array | null;
  submitted: number;
  lastTokenAt: number;
  ttftMs: number;
  finished: boolean;
  onAbort: (() => void) | null;
}

/** Most prompt positions per step when every position's logits are kept (echo / prompt logprobs). */
const SCORING_CHUNK = 128;

/** Continuous-batching scheduler over one model. */
export class Engine {
  readonly maxSequences: number;
  readonly maxQueue: number;
  private readonly prefillChunk: number;
  private readonly maxBatchTokens: number;
  private readonly hooks: EngineHooks;
  private readonly queue: Active[] = [];
  private readonly running: Active[] = [];
  private looping = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private readonly imageId: number;
  private readonly defaultStops: number[];
  private readonly banned: number[];
  /** Model steps run so far (for tests and the benchmark). */
  steps = 0;

  constructor(readonly model: InferenceModel, opts: EngineOptions = {}) {
    this.maxSequences = opts.maxSequences ?? 32;
    this.maxQueue = opts.maxQueue ?? 256;
    this.prefillChunk = opts.prefillChunk ?? 512;
    this.maxBatchTokens = Math.max(opts.maxBatchTokens ?? 2048, this.maxSequences + 1);
    this.hooks = opts.hooks ?? {};
    const tk = model.tokenizer;
    this.imageId = tk.specialTokenId('<|image|>');
    this.defaultStops = [tk.specialTokenId('<|end|>'), tk.specialTokenId('<|endoftext|>')];
    // never inside an answer: padding, image placeholders, and role tokens (a new turn is not the model's to start)
    this.banned = ['<|pad|>', '<|image|>', '<|system|>', '<|user|>', '<|assistant|>'].map((s) => tk.specialTokenId(s));
  }

  /** Requests waiting for a slot. */
  get queueDepth(): number { return this.queue.length; }
  /** Sequences in the running batch. */
  get activeSequences(): number { return this.running.length; }

  /** Model positions a prompt occupies. */
  promptPositions(prompt: number[]): number {
    const imageTokens = this.model.vision?.imageTokens ?? 1;
    let n = 0;
    for (const t of prompt) n += t === this.imageId ? imageTokens : 1;
    return n;
  }

  /**
   * Queues a request. Throws InputError for a prompt the model cannot take, EngineBusyError
   * when the queue is full, EngineClosedError after `close()`.
   */
  submit(req: GenerateRequest): Generation {
    if (this.closed) throw new EngineClosedError('the server is shutting down');
    const m = this.model;
    if (req.prompt.length === 0) throw new InputError('prompt: expected at least one token, got none');
    for (const t of req.prompt) {
      if (!Number.isInteger(t) || t < 0 || t >= m.vocabSize) throw new InputError(`prompt: token ids must be integers in [0, ${m.vocabSize}), got ${t}`);
    }
    const nImages = req.prompt.filter((t) => t === this.imageId).length;
    if (nImages !== (req.images?.length ?? 0)) throw new InputError(`prompt: has ${nImages} <|image|> tokens but ${req.images?.length ?? 0} images were given`);
    if (nImages > 0 && !m.vision) throw new InputError(`model '${m.name}' does not accept images`);
    const positions = this.promptPositions(req.prompt);
    const room = m.contextLength - positions;
    if (room < (req.maxTokens > 0 ? 1 : 0)) {
      throw new InputError(`prompt: ${positions} positions leave no room to generate in the context of ${m.contextLength}`);
    }
    if (this.running.length + this.queue.length >= this.maxSequences + this.maxQueue) {
      throw new EngineBusyError(`all ${this.maxSequences} sequences busy and ${this.maxQueue} requests queued; retry later`);
    }
    const gen = new Generation();
    const a: Active = {
      req, gen, seq: null,
      sampler: new Sampler(req.sampling, m.vocabSize, this.banned),
      text: new TextStream(m.tokenizer, req.stop ?? []),
      stopIds: new Set(req.stopTokenIds ?? this.defaultStops),
      maxTokens: Math.max(0, Math.min(req.maxTokens, room)),
      positions, fed: 0, imagesFed: 0, next: null, tokens: [], completion: 0,
      promptLogprobs: req.promptLogprobs ? [] : undefined, prevRow: null,
      submitted: performance.now(), lastTokenAt: 0, ttftMs: NaN, finished: false, onAbort: null,
    };
    if (req.signal?.aborted) { this.finish(a, 'cancelled'); return gen; }
    if (req.signal) {
      a.onAbort = () => this.finish(a, 'cancelled');
      req.signal.addEventListener('abort', a.onAbort, { once: true });
    }
    this.queue.push(a);
    this.admit();
    if (!this.looping) void this.loop();
    return gen;
  }

  /** Stops admitting requests; queued ones are cancelled. Running ones continue (see `drain`). */
  close(): void {
    this.closed = true;
    for (const a of [...this.queue]) this.finish(a, 'cancelled');
  }

  /** Resolves when nothing runs or waits. */
  idle(): Promise<void> {
    if (!this.looping && this.running.length === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Cancels everything running and queued (their streams end with finish reason 'cancelled'). */
  cancelAll(): void {
    for (const a of [...this.queue, ...this.running]) this.finish(a, 'cancelled');
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      while (this.queue.length || this.running.length) {
        this.admit();
        this.stepOnce();
        await yieldToEventLoop();
      }
    } catch (e) {
      // a bug in sampling or bookkeeping: fail what is in flight rather than crash the server
      for (const a of [...this.running, ...this.queue]) this.fail(a, e);
    } finally {
      this.looping = false;
      const w = this.idleWaiters; this.idleWaiters = [];
      for (const r of w) r();
    }
  }

  /** Moves queued requests into free slots of the running batch. */
  private admit(): void {
    while (this.running.length < this.maxSequences && this.queue.length) {
      const a = this.queue.shift()!;
      try {
        a.seq = this.model.newSequence();
      } catch (e) { // e.g. no memory for another cache: fail this request only
        this.fail(a, e);
        continue;
      }
      this.running.push(a);
    }
  }

  /** Plans and runs one batched step, then consumes its logits. */
  private stepOnce(): void {
    const items: StepItem[] = [];
    const owners: { a: Active; chunk: number[]; prefill: boolean }[] = [];
    let budget = this.maxBatchTokens;
    for (const a of this.running) {
      if (a.next === null) continue;
      items.push({ seq: a.seq!, tokens: [a.next] });
      owners.push({ a, chunk: [a.next], prefill: false });
      budget--;
    }
    const imageTokens = this.model.vision?.imageTokens ?? 1;
    for (const a of this.running) {
      if (a.next !== null || a.fed >= a.req.prompt.length) continue;
      if (budget <= 0 && items.length > 0) break;
      // scoring keeps a logits row per position: smaller chunks bound that memory (rows x vocab floats)
      const chunkCap = a.promptLogprobs ? Math.min(this.prefillChunk, SCORING_CHUNK) : this.prefillChunk;
      const limit = Math.max(1, Math.min(chunkCap, budget));
      const chunk: number[] = [];
      const images: ImageInput[] = [];
      let pos = 0;
      for (let i = a.fed; i < a.req.prompt.length; i++) {
        const t = a.req.prompt[i]!;
        const w = t === this.imageId ? imageTokens : 1;
        if (chunk.length > 0 && pos + w > limit) break;
        chunk.push(t); pos += w;
        if (t === this.imageId) images.push(a.req.images![a.imagesFed + images.length]!);
      }
      budget -= pos;
      const item: StepItem = { seq: a.seq!, tokens: chunk };
      if (images.length) item.images = images;
      if (a.promptLogprobs) item.allLogits = true;
      items.push(item);
      owners.push({ a, chunk, prefill: true });
    }
    if (items.length === 0) return;
    let outs: Float32Array[];
    try {
      outs = this.model.step(items);
      this.steps++;
    } catch (e) {
      for (const o of owners) this.fail(o.a, e);
      return;
    }
    const V = this.model.vocabSize;
    owners.forEach((o, i) => {
      const a = o.a;
      if (a.finished) return;
      const out = outs[i]!;
      if (o.prefill) {
        if (a.promptLogprobs) this.scorePrompt(a, o.chunk, out, imageTokens);
        a.fed += o.chunk.length;
        a.imagesFed += o.chunk.filter((t) => t === this.imageId).length;
        if (a.fed < a.req.prompt.length) return;
        if (a.promptLogprobs && a.req.stream) a.gen.events.push({ text: '', tokens: [], promptLogprobs: a.promptLogprobs });
        if (a.maxTokens === 0) { this.finish(a, 'length'); return; }
      }
      this.sampleNext(a, out.subarray(out.length - V));
    });
  }

  /** Logprob of each prompt token of `chunk` from the logits row before it. */
  private scorePrompt(a: Active, chunk: number[], out: Float32Array, imageTokens: number): void {
    const V = this.model.vocabSize;
    const k = a.req.logprobs ?? 0;
    let row = 0;
    for (const t of chunk) {
      const prev = row === 0 ? a.prevRow : out.subarray((row - 1) * V, row * V);
      if (t === this.imageId || prev === null) a.promptLogprobs!.push(null);
      else {
        const lse = logSumExp(prev);
        a.promptLogprobs!.push({ id: t, logprob: prev[t]! - lse, top: topLogprobs(prev, k, lse) });
      }
      row += t === this.imageId ? imageTokens : 1;
    }
    a.prevRow = out.slice(out.length - V);
  }

  private sampleNext(a: Active, row: Float32Array): void {
    const id = a.sampler.sample(row);
    a.sampler.observe(id);
    a.completion++;
    const now = performance.now();
    if (a.completion === 1) { a.ttftMs = now - a.submitted; this.hooks.onFirstToken?.(a.ttftMs); }
    else this.hooks.onToken?.(now - a.lastTokenAt);
    a.lastTokenAt = now;
    if (a.stopIds.has(id)) { this.finish(a, 'stop'); return; }
    const k = a.req.logprobs;
    let info: TokenInfo;
    if (k === null || k === undefined) info = { id, logprob: NaN, top: [] };
    else { const lse = logSumExp(row); info = { id, logprob: row[id]! - lse, top: topLogprobs(row, k, lse) }; }
    a.tokens.push(info);
    const { delta, stopped } = a.text.push(id);
    if (a.req.stream) a.gen.events.push({ text: delta, tokens: [info] });
    if (stopped) { this.finish(a, 'stop'); return; }
    if (a.completion >= a.maxTokens || a.seq!.length + 1 > this.model.contextLength) { this.finish(a, 'length'); return; }
    a.next = id;
  }

  private detach(a: Active): void {
    a.finished = true;
    if (a.onAbort) a.req.signal!.removeEventListener('abort', a.onAbort);
    const qi = this.queue.indexOf(a);
    if (qi >= 0) this.queue.splice(qi, 1);
    const ri = this.running.indexOf(a);
    if (ri >= 0) this.running.splice(ri, 1);
    if (a.seq) { this.model.release(a.seq); a.seq = null; }
    if (ri >= 0 && !this.closed) this.admit();
  }

  private finish(a: Active, reason: FinishReason): void {
    if (a.finished) return;
    this.detach(a);
    const { delta, stopped } = a.text.finish();
    if (reason !== 'cancelled' && delta && a.req.stream) a.gen.events.push({ text: delta, tokens: [] });
    const r: GenerationResult = {
      text: a.text.output, tokens: a.tokens, finishReason: stopped && reason === 'length' ? 'stop' : reason,
      promptTokens: a.positions, completionTokens: a.completion, ttftMs: a.ttftMs,
    };
    if (a.promptLogprobs) r.promptLogprobs = a.promptLogprobs;
    a.gen.events.close();
    a.gen.settle(r);
    this.hooks.onFinish?.(r);
  }

  private fail(a: Active, e: unknown): void {
    if (a.finished) return;
    this.detach(a);
    a.gen.events.close();
    a.gen.fail(e);
  }
}
