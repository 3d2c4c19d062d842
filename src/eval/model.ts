/**
 * The contract between the evaluation harness and whatever answers its questions: a local
 * Lumen model (src/eval/local-model.ts), any OpenAI-compatible endpoint (./endpoint.ts), or the
 * deterministic fake the tests use. A task file runs unchanged against all of them.
 */

/** One part of a multimodal chat message (OpenAI wire format). Images are data URLs, http(s) URLs or local file paths. */
export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string } };

/** A chat message; `content` is plain text or a list of text and image parts. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ContentPart[];
}

/** Scores `continuation` given `context`. */
export interface LoglikelihoodRequest {
  context: string;
  continuation: string;
}

/** log P(continuation | context) summed over the continuation's tokens; `greedy` = every token was the argmax. */
export interface LoglikelihoodResult {
  logprob: number;
  greedy: boolean;
  tokens: number;
}

/** Free generation: a completion of `prompt`, or a chat reply when `messages` are given. */
export interface GenerateRequest {
  prompt?: string;
  messages?: ChatMessage[];
  maxTokens: number;
  temperature: number;
  stop?: string[];
  seed?: number;
}

/** A model under evaluation. Batches go in whole; the implementation decides how to schedule them. */
export interface EvalModel {
  readonly name: string;
  /** log P(continuation | context) summed over continuation tokens, and whether it is the greedy continuation. */
  loglikelihood(reqs: LoglikelihoodRequest[]): Promise<LoglikelihoodResult[]>;
  /** Free generation (completions, or chat when messages are given). Images as data URLs or paths. */
  generate(reqs: GenerateRequest[]): Promise<string[]>;
  /** False when the model cannot score text (e.g. a chat-only endpoint); loglikelihood tasks then refuse to run. */
  readonly supportsLoglikelihood: boolean;
}

/** The text of a chat transcript, for models that only take a prompt (images are dropped by the caller's choice). */
export function messagesToText(messages: ChatMessage[]): string {
  return messages.map((m) => typeof m.content === 'string'
    ? m.content
    : m.content.map((p) => (p.type === 'text' ? p.text : '')).join('')).join('\n');
}
