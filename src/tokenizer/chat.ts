/**
 * The chat template, defined once for training (SFT, alignment) and serving.
 *
 *   <|system|>You are terse.<|end|><|user|>What is in <|image|>?<|end|><|assistant|>A cat.<|end|>
 *
 * Each message is its role token, its content and `<|end|>`. An image content part becomes one
 * `<|image|>` token (the multimodal model expands it into image embeddings). The generation
 * prompt is `<|assistant|>`; generation stops at `<|end|>` or `<|endoftext|>`. Message text is
 * encoded with special tokens disabled, so text that spells `<|end|>` cannot forge a turn.
 */
import { InputError } from '../util/errors.ts';
import type { SpecialToken } from './special.ts';

/** The roles of the template. */
export const CHAT_ROLES = ['system', 'user', 'assistant'] as const;
export type ChatRole = (typeof CHAT_ROLES)[number];

/** One part of a message: text, or an image of any representation `I` (bytes, pixels, ...). */
export type ChatPart<I> = { type: 'text'; text: string } | { type: 'image'; image: I };

/** One chat message; content is a string or a list of parts. */
export interface ChatMessage<I = unknown> {
  role: ChatRole;
  content: string | ChatPart<I>[];
}

/** What the template needs from a tokenizer. */
export interface ChatEncoder {
  encode(text: string): number[];
  specialTokenId(name: SpecialToken | string): number;
}

/** A rendered conversation. */
export interface RenderedChat<I> {
  /** Token ids; each image is one `<|image|>` id. */
  ids: number[];
  /** The images in the order of their `<|image|>` ids. */
  images: I[];
  /** 1 where the token is assistant output to learn (content and its `<|end|>`), else 0; same length as ids. */
  assistantMask: Uint8Array;
}

/** Token ids that end a generated answer. */
export function chatStopTokenIds(enc: ChatEncoder): number[] {
  return [enc.specialTokenId('<|end|>'), enc.specialTokenId('<|endoftext|>')];
}

/**
 * Renders messages into token ids. With `addGenerationPrompt` the ids end with `<|assistant|>`
 * so that a model continues with the assistant's answer.
 */
export function renderChat<I>(enc: ChatEncoder, messages: ChatMessage<I>[], opts: { addGenerationPrompt?: boolean } = {}): RenderedChat<I> {
  const ids: number[] = [];
  const mask: number[] = [];
  const images: I[] = [];
  const end = enc.specialTokenId('<|end|>');
  const imageId = enc.specialTokenId('<|image|>');
  const push = (toks: number[], m: number) => { for (const t of toks) { ids.push(t); mask.push(m); } };
  messages.forEach((msg, i) => {
    if (!(CHAT_ROLES as readonly string[]).includes(msg.role)) {
      throw new InputError(`chat message ${i}: role must be one of ${CHAT_ROLES.join(', ')}, got '${String(msg.role)}'`);
    }
    const learn = msg.role === 'assistant' ? 1 : 0;
    push([enc.specialTokenId(`<|${msg.role}|>`)], 0);
    const parts: ChatPart<I>[] = typeof msg.content === 'string' ? [{ type: 'text', text: msg.content }] : msg.content;
    for (const p of parts) {
      if (p.type === 'text') push(enc.encode(p.text), learn);
      else if (p.type === 'image') { push([imageId], 0); images.push(p.image); }
      else throw new InputError(`chat message ${i}: part type must be 'text' or 'image', got '${String((p as { type: unknown }).type)}'`);
    }
    push([end], learn);
  });
  if (opts.addGenerationPrompt) push([enc.specialTokenId('<|assistant|>')], 0);
  return { ids, images, assistantMask: Uint8Array.from(mask) };
}
