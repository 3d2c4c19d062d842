/**
 * HTTP plumbing for endpoint clients: a concurrency limit, and POST with retries. Retries cover
 * 429, 5xx and network errors, waiting base * 2^attempt (capped) times a random factor in
 * [0.5, 1) — exponential backoff with jitter, so many clients do not retry in lockstep. A
 * `Retry-After` header (seconds) is honoured up to the cap.
 */
import { LumenError } from '../util/errors.ts';

/** Runs at most `n` tasks at a time. */
export class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(readonly n: number) {
    if (!Number.isInteger(n) || n < 1) throw new LumenError(`concurrency must be an integer >= 1, got ${n}`);
  }

  /** Runs `fn` when a slot is free. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((res) => this.queue.push(res));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

/** An HTTP error response that is not worth retrying (4xx other than 429), or retries ran out. */
export class HttpError extends LumenError {
  constructor(readonly status: number, readonly url: string, readonly body: string) {
    super(`POST ${url} failed with HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

/** Retry settings. */
export interface RetryOptions {
  maxRetries: number;
  baseMs: number;
  maxMs: number;
  timeoutMs: number;
}

/** Counters for reporting and tests. */
export interface HttpStats {
  requests: number;
  retries: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The wait before retry number `attempt` (0-based). */
export function backoffMs(attempt: number, o: RetryOptions, retryAfter: string | null): number {
  const capped = Math.min(o.maxMs, o.baseMs * 2 ** attempt);
  const jittered = capped * (0.5 + 0.5 * Math.random());
  const ra = retryAfter !== null ? Number(retryAfter) : NaN;
  return Number.isFinite(ra) && ra >= 0 ? Math.min(o.maxMs, Math.max(jittered, ra * 1000)) : jittered;
}

/** POSTs JSON and returns the parsed JSON reply, retrying transient failures. */
export async function postJson(url: string, body: unknown, headers: Record<string, string>, o: RetryOptions, stats: HttpStats): Promise<unknown> {
  let lastError = '';
  for (let attempt = 0; attempt <= o.maxRetries; attempt++) {
    if (attempt > 0) stats.retries++;
    stats.requests++;
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST', headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body), signal: AbortSignal.timeout(o.timeoutMs),
      });
    } catch (e) {
      lastError = `network error: ${(e as Error).message}${(e as { cause?: Error }).cause ? ` (${(e as { cause: Error }).cause.message})` : ''}`;
      if (attempt < o.maxRetries) await sleep(backoffMs(attempt, o, null));
      continue;
    }
    const text = await res.text();
    if (res.ok) {
      try {
        return JSON.parse(text);
      } catch {
        throw new LumenError(`POST ${url}: the reply is not JSON: ${text.slice(0, 200)}`);
      }
    }
    if (res.status === 429 || res.status >= 500) {
      lastError = `HTTP ${res.status}: ${text.slice(0, 200)}`;
      if (attempt < o.maxRetries) await sleep(backoffMs(attempt, o, res.headers.get('retry-after')));
      continue;
    }
    throw new HttpError(res.status, url, text);
  }
  throw new LumenError(`POST ${url}: gave up after ${o.maxRetries + 1} attempts; last failure: ${lastError}`);
}
