/**
 * The one list of special tokens, shared by the tokenizer, the chat template (training and
 * serving) and the multimodal model. Special tokens take the last ids of a vocabulary, in
 * this order, after the byte-level BPE tokens.
 */
export const SPECIAL_TOKENS = [
  '<|endoftext|>', // document separator; also the end of a completion
  '<|pad|>',       // padding in batches (never a target)
  '<|system|>',    // chat roles: each message is <|role|>text<|end|>
  '<|user|>',
  '<|assistant|>',
  '<|end|>',       // end of a chat message
  '<|image|>',     // placeholder that the multimodal model expands into image embeddings
] as const;

export type SpecialToken = (typeof SPECIAL_TOKENS)[number];
