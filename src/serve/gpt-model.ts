/**
 * A trained text GPT as an `InferenceModel`: the KV-cache Decoder of src/models behind the
 * engine's contract. Sequences are KV caches; `step` is one batched Decoder step.
 */
import { GPT } from '../models/gpt.ts';
import { Decoder, type KVCache } from '../models/decoder.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { InputError, OpError } from '../util/errors.ts';
import type { InferenceModel, SequenceState, StepItem, TextCodec } from './model.ts';

class GPTSequence implements SequenceState {
  released = false;
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

  /** The weights are shared with `model`: an update (e.g. a PPO step) shows in the next step. */
  constructor(readonly model: GPT, tokenizer: Tokenizer, readonly name = 'lumen-gpt') {
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
    return this.decoder.step(items.map((it, i) => {
      if (!(it.seq instanceof GPTSequence)) throw new OpError('gpt.step', `item ${i}: a sequence this model did not create`);
      if (it.seq.released) throw new OpError('gpt.step', `item ${i}: the sequence was released`);
      if ((it.images && it.images.length > 0) || it.tokens.includes(this.imageId)) {
        throw new InputError(`${this.name} is a text-only model: it cannot take images`);
      }
      return { cache: it.seq.cache, tokens: it.tokens, allLogits: it.allLogits };
    }));
  }

  /** Marks the sequence unusable; its cache is plain memory, freed with the last reference. */
  release(seq: SequenceState): void {
    if (seq instanceof GPTSequence) seq.released = true;
  }
}
