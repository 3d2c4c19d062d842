/**
 * The OpenAI request shapes the server accepts, validated with zod, and the pieces of the
 * response shapes built from engine results. Ranges follow the OpenAI API reference; anything
 * outside them is a 400 naming the parameter.
 */
import { z } from 'zod';
import { ApiError } from './http.ts';
import type { TextCodec } from './model.ts';
import type { TokenInfo } from './engine.ts';

const num = (lo: number, hi: number) => z.number().min(lo).max(hi).nullish();
const int = () => z.number().int();

const stopSchema = z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).nullish();

/** Sampling fields common to both endpoints. */
const samplingFields = {
  model: z.string().min(1),
  temperature: num(0, 2),
  top_p: z.number().gt(0).max(1).nullish(),
  /** Not in OpenAI's API (vLLM has it): keep the k most likely tokens; 0 or -1 = off. */
  top_k: int().min(-1).max(1_000_000).nullish(),
  n: z.literal(1, { error: 'only n = 1 is supported' }).nullish(),
  stop: stopSchema,
  seed: int().min(-(2 ** 53)).max(2 ** 53).nullish(),
  presence_penalty: num(-2, 2),
  frequency_penalty: num(-2, 2),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  user: z.string().nullish(),
  /** Not in OpenAI's API (vLLM has it): keep generating past end-of-text tokens, for benchmarks. */
  ignore_eos: z.boolean().nullish(),
};

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const imagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.object({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).nullish() }),
});
const contentPart = z.discriminatedUnion('type', [textPart, imagePart], { error: "content part type must be 'text' or 'image_url'" });

const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant'], { error: "role must be one of 'system', 'developer', 'user', 'assistant'" }),
  content: z.union([z.string(), z.array(contentPart).min(1)], { error: 'content must be a string or a non-empty array of content parts' }),
  name: z.string().nullish(),
});

export const chatRequestSchema = z.object({
  ...samplingFields,
  messages: z.array(message).min(1, { error: 'messages must hold at least one message' }),
  max_tokens: int().min(1).nullish(),
  max_completion_tokens: int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: int().min(0).max(20).nullish(),
  tools: z.array(z.unknown()).max(0, { error: 'tools are not supported by this server' }).nullish(),
  response_format: z.object({ type: z.literal('text', { error: "only response_format type 'text' is supported" }) }).nullish(),
});
export type ChatRequest = z.infer<typeof chatRequestSchema>;

export const completionRequestSchema = z.object({
  ...samplingFields,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1).max(64),
    z.array(int().min(0)).min(1),
    z.array(z.array(int().min(0)).min(1)).min(1).max(64),
  ], { error: 'prompt must be a string, an array of strings, an array of token ids or an array of such arrays' }),
  max_tokens: int().min(0).nullish(),
  echo: z.boolean().nullish(),
  logprobs: int().min(0).max(20).nullish(),
  suffix: z.null({ error: 'suffix is not supported' }).optional(),
  best_of: z.literal(1, { error: 'only best_of = 1 is supported' }).nullish(),
});
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

/** Validates `body` against `schema`, turning the first issue into a 400 naming the parameter. */
export function validate<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  let issue = r.error.issues[0]! as z.core.$ZodIssue;
  let path: PropertyKey[] = [...issue.path];
  // In a union, report the branch that got furthest (e.g. the bad field of a content part).
  while (issue.code === 'invalid_union' && issue.errors.length) {
    const deepest = issue.errors.map((b) => b[0]).filter((x) => x !== undefined).sort((a, b) => b.path.length - a.path.length)[0];
    if (!deepest || deepest.path.length === 0) break;
    issue = deepest;
    path = [...path, ...deepest.path];
  }
  const param = path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('') || null;
  let actual: unknown = body;
  for (const p of path) actual = actual !== null && typeof actual === 'object' ? (actual as Record<PropertyKey, unknown>)[p] : undefined;
  let msg = issue.message;
  if (actual === undefined) msg = issue.code === 'invalid_type' ? 'is required' : msg;
  else if (!/received|got /.test(msg)) {
    const shown = JSON.stringify(actual) ?? String(actual);
    msg += `, got ${shown.length > 60 ? shown.slice(0, 57) + '...' : shown}`;
  }
  throw new ApiError(400, param ? `${param}: ${msg}` : msg, 'invalid_request_error', param, 'invalid_value');
}

/** The stop list of a request. */
export function stopList(stop: string | string[] | null | undefined): string[] {
  return stop == null ? [] : typeof stop === 'string' ? [stop] : stop;
}

/** Text and bytes of one token, for logprobs. */
export function tokenText(codec: TextCodec, id: number): { token: string; bytes: number[] } {
  const token = codec.decode([id]);
  const bytes = codec.tokenBytes ? Array.from(codec.tokenBytes(id)) : Array.from(Buffer.from(token, 'utf8'));
  return { token, bytes };
}

/** Chat-completions `logprobs.content` entries. */
export function chatLogprobs(codec: TextCodec, tokens: TokenInfo[]): { token: string; logprob: number; bytes: number[]; top_logprobs: { token: string; logprob: number; bytes: number[] }[] }[] {
  return tokens.map((t) => ({
    ...tokenText(codec, t.id), logprob: t.logprob,
    top_logprobs: t.top.map((x) => ({ ...tokenText(codec, x.id), logprob: x.logprob })),
  }));
}

/** Legacy completions `logprobs` object; `start` is the text offset of the first token. */
export interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

/** Appends tokens (null entries: no logprob, e.g. the first prompt token) to a legacy logprobs object. */
export function appendLegacyLogprobs(out: LegacyLogprobs, codec: TextCodec, ids: number[], infos: (TokenInfo | null)[], start: number): number {
  let offset = start;
  ids.forEach((id, i) => {
    const text = codec.decode([id]);
    const info = infos[i] ?? null;
    out.tokens.push(text);
    out.token_logprobs.push(info ? info.logprob : null);
    if (info) {
      const top: Record<string, number> = {};
      for (const x of info.top) { const k = codec.decode([x.id]); if (!(k in top)) top[k] = x.logprob; }
      out.top_logprobs.push(top);
    } else out.top_logprobs.push(null);
    out.text_offset.push(offset);
    offset += text.length;
  });
  return offset;
}
