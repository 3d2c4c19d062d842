/**
 * A trained text GPT as an `InferenceModel`: the KV-cache Decoder of src/models behind the
 * engine's contract. Sequences are KV caches; `step` is one batched Decoder step.
 */
import { GPT } from '../models/gpt.ts';
import { Decoder, type KVCache } from '../models/decoder.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { InputError } from '../util/errors.ts';
import type { InferenceModel, SequenceState, StepItem, TextCodec } from './model.ts';

class GPTSequence implements SequenceState {
  constructor(readonly cache: KVCache) {}
  get length(): number { return this.cache.length; }
}

export class GPTInferenceModel implements InferenceModel {
  readonly contextLength: number;
  readonly vocabSize: number;
  readonly vision = null;
  readonly tokenizer: TextCodec;
  private readonly decoder: Decoder;
  private readonly imageId: number;

  constructor(readonly model: GPT, tokenizer: Tokenizer, readonly name: string) {
    this.decoder = new Decoder(model);
    this.contextLength = model.config.contextLength;
    this.vocabSize = model.config.vocabSize;
    if (tokenizer.vocabSize !== this.vocabSize) {
      throw new InputError(`${name}: tokenizer vocabulary ${tokenizer.vocabSize} differs from the model's ${this.vocabSize}`);
    }
    this.tokenizer = {
      encode: (text, opts) => tokenizer.encode(text, opts),
      decode: (ids) => tokenizer.decode(ids),
      vocabSize: tokenizer.vocabSize,
      specialTokenId: (n) => tokenizer.specialTokenId(n),
      tokenBytes: (id) => tokenizer.idToTokenBytes(id),
    };
    this.imageId = tokenizer.specialTokenId('<|image|>');
  }

  newSequence(): SequenceState {
    return new GPTSequence(this.decoder.newCache());
  }

  step(items: StepItem[]): Float32Array[] {
    for (const it of items) {
      if ((it.images && it.images.length > 0) || it.tokens.includes(this.imageId)) {
        throw new InputError(`${this.name} is a text-only model: it cannot take images`);
      }
    }
    return this.decoder.step(items.map((it) => ({ cache: (it.seq as GPTSequence).cache, tokens: it.tokens, allLogits: it.allLogits })));
  }

  release(_seq: SequenceState): void {
    // The cache is plain memory: dropping the reference frees it.
  }
}
