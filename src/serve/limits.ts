/**
 * Server limits: every bound a client could push against, with defaults that suit a single
 * machine. All are configurable through `createServer({ limits })` and `lumen serve` options.
 */
import { InputError } from '../util/errors.ts';

export interface ServerLimits {
  /** Largest request body in bytes (HTTP 413 beyond). */
  maxBodyBytes: number;
  /** Largest encoded image in bytes. */
  maxImageBytes: number;
  /** Largest image width × height before decoding. */
  maxImagePixels: number;
  /** Images in one request. */
  maxImages: number;
  /** Prompt positions; default (0) = the model's context length. */
  maxPromptTokens: number;
  /** Largest max_tokens a request may ask for; also the default when it asks for none. */
  maxTokens: number;
  /** Sequences generating at once (the batch). */
  maxSequences: number;
  /** Requests waiting for a slot; beyond them HTTP 429. */
  maxQueue: number;
  /** A request running longer is ended (HTTP 503, or an error event on a stream). */
  requestTimeoutMs: number;
  /** On shutdown, how long in-flight requests may finish before they are cut. */
  shutdownGraceMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxBodyBytes: 16 * 1024 * 1024,
  maxImageBytes: 8 * 1024 * 1024,
  maxImagePixels: 16_000_000,
  maxImages: 8,
  maxPromptTokens: 0,
  maxTokens: 1024,
  maxSequences: 32,
  maxQueue: 128,
  requestTimeoutMs: 300_000,
  shutdownGraceMs: 10_000,
};

/** Defaults overridden by `over`; every value must be a positive integer (maxPromptTokens may be 0). */
export function resolveLimits(over: Partial<ServerLimits> = {}): ServerLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const [k, v] of Object.entries(over) as [keyof ServerLimits, number | undefined][]) {
    if (v === undefined) continue;
    if (!(k in DEFAULT_LIMITS)) throw new InputError(`server limit '${k}': unknown; expected one of ${Object.keys(DEFAULT_LIMITS).join(', ')}`);
    const min = k === 'maxPromptTokens' || k === 'maxQueue' ? 0 : 1;
    if (!Number.isInteger(v) || v < min) throw new InputError(`server limit '${k}': expected an integer >= ${min}, got ${v}`);
    out[k] = v;
  }
  return out;
}
