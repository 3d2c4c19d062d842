/**
 * The contract between the inference engine and a model. The engine (scheduling, sampling,
 * stop strings, logprobs) knows nothing about tensors; a model knows nothing about requests.
 * The GPT and multimodal models implement `InferenceModel`; the tests use a deterministic fake.
 */

/** Text <-> token ids for one vocabulary. */
export interface TextCodec {
  /**
   * Token ids of `text`. Special-token strings (`<|end|>`, ...) are encoded as ordinary text
   * unless listed in `allowedSpecial` (or it is 'all'), so user text can never inject them.
   */
  encode(text: string, opts?: { allowedSpecial?: 'all' | Set<string> }): number[];
  /** Text of a token sequence; an incomplete UTF-8 sequence at the end decodes to U+FFFD. */
  decode(ids: number[]): string;
  readonly vocabSize: number;
  /** Id of a special token by its text (`<|end|>`); throws if the vocabulary lacks it. */
  specialTokenId(name: string): number;
  /**
   * The raw bytes of one token, when tokens are byte sequences (byte-level BPE). Optional:
   * without it the engine uses the UTF-8 of `decode([id])`. Used for the `bytes` field of
   * chat logprobs, where a token may hold part of a multi-byte character.
   */
  tokenBytes?(id: number): Uint8Array;
}

/** What a served model's vision path takes (InferenceModel.vision). */
export interface VisionInfo {
  imageTokens: number;
  imageSize: number;
  /** Order of the training prompts; absent counts as 'first'. */
  imagePlacement?: 'first' | 'last';
}

/** One image, ready for the vision encoder. */
export interface ImageInput {
  /** (3, S, S) normalised pixels, S = the model's `vision.imageSize` (from src/io/image.ts decodeImage). */
  pixels: Float32Array;
}

/** Opaque to the engine: the model's KV cache for one sequence. */
export interface SequenceState {
  /** Positions held so far (an image counts as `vision.imageTokens` positions). */
  readonly length: number;
}

/** One sequence's part of a batched forward step. */
export interface StepItem {
  seq: SequenceState;
  /** Tokens to append; each `<|image|>` id takes the next image of `images` and occupies `vision.imageTokens` positions. */
  tokens: number[];
  images?: ImageInput[];
  /** Return logits for every new position (prompt logprobs), not only the last. */
  allLogits?: boolean;
}

/** A model the engine can serve. */
export interface InferenceModel {
  readonly name: string;
  /** Maximum positions of one sequence (prompt + generated, images counted as their positions). */
  readonly contextLength: number;
  readonly vocabSize: number;
  readonly tokenizer: TextCodec;
  /**
   * null if text-only; else how many positions one image occupies, its input resolution, and
   * where the model's training prompts put the image: 'first' (image, then question) or 'last'
   * (question, then image). Clients that do not interleave deliberately should send the parts
   * in that order; the server keeps the order it is sent.
   */
  readonly vision: null | VisionInfo;
  newSequence(): SequenceState;
  /**
   * Feeds new inputs to several sequences at once (one batched forward). Returns, per item,
   * logits (positions, vocab) as one row-major Float32Array: the last new position only, or
   * all new positions when `allLogits` (an image contributes `imageTokens` rows).
   */
  step(items: StepItem[]): Float32Array[];
  /** Frees the sequence's cache; the state must not be used afterwards. */
  release(seq: SequenceState): void;
}
