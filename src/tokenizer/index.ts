/**
 * Public entry of the tokenizer: byte-level BPE with the GPT-4 (cl100k) and GPT-4o (o200k)
 * encodings, training, and Hugging Face tokenizer.json interop.
 *
 *   import { Tokenizer, trainBpe, type TextCodec } from '../tokenizer/index.ts';
 *   const tok = Tokenizer.fromTiktoken('cl100k_base');      // or Tokenizer.load(dir)
 *   const ids = tok.encode('Hello'); tok.decode(ids);
 */
import type { EncodeOptions, Tokenizer as TokenizerClass } from './tokenizer.ts';

/**
 * The minimal interface other modules depend on (data loaders, chat template, serving, eval):
 * text <-> ids, the vocabulary size and special token ids. `Tokenizer` implements it.
 */
export interface TextCodec {
  /** Token ids of `text`; special-token text is plain text unless `opts.allowedSpecial` allows it. */
  encode(text: string, opts?: EncodeOptions): number[];
  /** Text of `ids` (invalid UTF-8 becomes U+FFFD). */
  decode(ids: ArrayLike<number>): string;
  /** Largest id + 1. */
  readonly vocabSize: number;
  /** Id of a special token such as '<|endoftext|>'; throws InputError when absent. */
  specialTokenId(name: string): number;
}

/** Compile-time proof that Tokenizer implements TextCodec. */
export type TokenizerIsTextCodec = TokenizerClass extends TextCodec ? true : never;
const _tokenizerIsTextCodec: TokenizerIsTextCodec = true;
void _tokenizerIsTextCodec;

export { Tokenizer, type EncodeOptions, type TokenizerData } from './tokenizer.ts';
export { trainBpe, learnMerges, type TrainOptions, type TrainStats } from './train.ts';
export { CL100K_PATTERN, O200K_PATTERN, PreTokenizer, resolvePattern } from './pretokenize.ts';
export { TIKTOKEN_ENCODINGS, type TiktokenEncoding } from './tiktoken.ts';
export { SPECIAL_TOKENS, type SpecialToken } from './special.ts';
export { toTokenizerJson, fromTokenizerJson, GPT2_PATTERN, BYTE_TO_CHAR } from './hf.ts';
export type { TrainInput } from './count.ts';
