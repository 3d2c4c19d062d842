/**
 * `OpenAIEndpointModel`: evaluates any OpenAI-compatible server (`lumen serve`, vLLM, llama.cpp,
 * the OpenAI API, ...).
 *
 * - Generation goes to /v1/chat/completions in `chat` mode, to /v1/completions in `completions`
 *   mode (chat messages are flattened to text there, and items with images are refused).
 * - Loglikelihood always goes to /v1/completions with `echo: true, logprobs: 1`: the server
 *   returns the prompt's tokens with their log probabilities and character offsets; the
 *   continuation's tokens are those ending after the context. Servers differ on
 *   `max_tokens: 0` — some require at least 1 and then append one generated token — so the
 *   client first sends 0 and, on a 4xx, switches to 1 for the rest of the run; tokens starting
 *   at or after the end of the prompt are ignored either way.
 * - At most `concurrency` requests are in flight; 429, 5xx and network errors are retried with
 *   exponential backoff and jitter (./http.ts).
 * - Results are cached on disk by request content (./cache.ts), so a rerun sends nothing.
 * - Local image paths in chat messages are sent as data URLs.
 */
import { readFileSync, existsSync } from 'node:fs';
import { extname } from 'node:path';
import { InputError, LumenError } from '../util/errors.ts';
import { ResponseCache } from './cache.ts';
import { HttpError, Limiter, postJson, type HttpStats, type RetryOptions } from './http.ts';
import { messagesToText, type ChatMessage, type EvalModel, type GenerateRequest, type LoglikelihoodRequest, type LoglikelihoodResult } from './model.ts';

/** Settings of an endpoint client. */
export interface EndpointOptions {
  /** Base URL: `http://host:port` or `http://host:port/v1`. */
  url: string;
  apiKey?: string;
  /** The `model` field sent with each request. */
  model: string;
  /** Where generation goes; loglikelihood always uses /v1/completions. */
  mode?: 'chat' | 'completions';
  /** Whether the endpoint offers prompt logprobs (echo + logprobs on /v1/completions). */
  logprobs?: boolean;
  concurrency?: number;
  retry?: Partial<RetryOptions>;
  /** Cache folder, or null for no cache. Default `.lumen-cache/eval`. */
  cacheDir?: string | null;
}

const MIME: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp' };

/** A local image path as a data URL; data and http(s) URLs pass through. */
export function imageUrl(ref: string): string {
  if (/^(data:|https?:)/.test(ref)) return ref;
  const mime = MIME[extname(ref).toLowerCase()];
  if (!mime) throw new InputError(`image '${ref}': expected a .png, .jpg, .gif or .webp file, a data URL or an http(s) URL`);
  if (!existsSync(ref)) throw new InputError(`image '${ref}' does not exist`);
  return `data:${mime};base64,${readFileSync(ref).toString('base64')}`;
}

/** The `logprobs` object of a legacy completions reply. */
export interface CompletionLogprobs {
  tokens?: string[];
  token_logprobs?: (number | null)[];
  top_logprobs?: (Record<string, number> | null)[] | null;
  text_offset?: number[];
}

/** Sums the continuation's token log probabilities out of an echo reply. Exported for tests. */
export function continuationLogprob(lp: CompletionLogprobs, contextLen: number, fullLen: number, where: string): LoglikelihoodResult {
  const { tokens, token_logprobs: lps, text_offset: offs } = lp;
  if (!tokens || !lps || !offs || tokens.length !== lps.length || tokens.length !== offs.length)
    throw new LumenError(`${where}: the reply lacks logprobs.tokens / token_logprobs / text_offset of equal length; the endpoint does not support echo + logprobs`);
  let logprob = 0, count = 0, greedy = true;
  for (let i = 0; i < tokens.length; i++) {
    // A token ends where the next one starts (robust to tokens that hold part of a character).
    const start = offs[i]!;
    const end = i + 1 < tokens.length ? Math.max(offs[i + 1]!, start + Math.min(1, tokens[i]!.length)) : start + tokens[i]!.length;
    if (start >= fullLen) break; // a generated token (max_tokens >= 1)
    if (end <= contextLen) continue; // context token
    const v = lps[i];
    if (v === null || v === undefined || !Number.isFinite(v)) throw new LumenError(`${where}: token ${i} (${JSON.stringify(tokens[i])}) of the continuation has no log probability`);
    logprob += v;
    count++;
    const top = lp.top_logprobs?.[i];
    if (!top) greedy = false;
    else if (Math.max(...Object.values(top)) > v + 1e-6) greedy = false;
  }
  if (count === 0) throw new LumenError(`${where}: no tokens of the continuation found in the echoed prompt (offsets end at ${offs[offs.length - 1]}, context is ${contextLen} characters)`);
  return { logprob, greedy, tokens: count };
}

/** An OpenAI-compatible endpoint as an evaluation model. */
export class OpenAIEndpointModel implements EvalModel {
  readonly name: string;
  readonly supportsLoglikelihood: boolean;
  readonly stats: HttpStats = { requests: 0, retries: 0 };
  readonly cache: ResponseCache | null;
  private readonly base: string;
  private readonly mode: 'chat' | 'completions';
  private readonly limiter: Limiter;
  private readonly retry: RetryOptions;
  private readonly headers: Record<string, string>;
  /** 0 until a server refuses it, then 1. */
  private echoMaxTokens = 0;

  constructor(private readonly opts: EndpointOptions) {
    if (!/^https?:\/\//.test(opts.url)) throw new InputError(`--endpoint: expected an http(s) URL, got '${opts.url}'`);
    const u = opts.url.replace(/\/+$/, '');
    this.base = /\/v1$/.test(u) ? u : `${u}/v1`;
    this.name = opts.model;
    this.mode = opts.mode ?? 'chat';
    this.supportsLoglikelihood = opts.logprobs ?? true;
    this.limiter = new Limiter(opts.concurrency ?? 4);
    this.retry = { maxRetries: 5, baseMs: 500, maxMs: 20_000, timeoutMs: 300_000, ...opts.retry };
    this.headers = opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {};
    this.cache = opts.cacheDir === null ? null : new ResponseCache(opts.cacheDir ?? '.lumen-cache/eval');
  }

  private async cached<T>(key: unknown, fn: () => Promise<T>): Promise<T> {
    const hit = this.cache?.get<T>(key);
    if (hit !== undefined) return hit;
    const v = await fn();
    this.cache?.set(key, v);
    return v;
  }

  async loglikelihood(reqs: LoglikelihoodRequest[]): Promise<LoglikelihoodResult[]> {
    if (!this.supportsLoglikelihood) throw new InputError(`endpoint ${this.base}: loglikelihood scoring was turned off (no logprobs)`);
    return Promise.all(reqs.map((r) => this.cached({ kind: 'loglikelihood', base: this.base, model: this.opts.model, context: r.context, continuation: r.continuation },
      () => this.limiter.run(() => this.scoreOne(r)))));
  }

  private async scoreOne(r: LoglikelihoodRequest): Promise<LoglikelihoodResult> {
    const prompt = r.context + r.continuation;
    const url = `${this.base}/completions`;
    for (;;) {
      const maxTokens = this.echoMaxTokens;
      const body = { model: this.opts.model, prompt, max_tokens: maxTokens, echo: true, logprobs: 1, temperature: 0 };
      let reply: unknown;
      try {
        reply = await postJson(url, body, this.headers, this.retry, this.stats);
      } catch (e) {
        if (e instanceof HttpError && maxTokens === 0 && e.status >= 400 && e.status < 500 && e.status !== 401 && e.status !== 403 && e.status !== 404) {
          this.echoMaxTokens = 1;
          continue;
        }
        throw e;
      }
      const choice = (reply as { choices?: { logprobs?: CompletionLogprobs }[] }).choices?.[0];
      if (!choice?.logprobs) throw new LumenError(`${url}: the reply has no choices[0].logprobs; the endpoint does not offer prompt logprobs (run the task in generate or cot mode)`);
      return continuationLogprob(choice.logprobs, r.context.length, prompt.length, url);
    }
  }

  async generate(reqs: GenerateRequest[]): Promise<string[]> {
    return Promise.all(reqs.map((r) => {
      const body = this.generateBody(r);
      return this.cached({ kind: 'generate', base: this.base, mode: this.mode, body },
        () => this.limiter.run(() => this.generateOne(body)));
    }));
  }

  private generateBody(r: GenerateRequest): { path: string; body: Record<string, unknown> } {
    const common = { model: this.opts.model, max_tokens: r.maxTokens, temperature: r.temperature, stop: r.stop, seed: r.seed };
    const messages: ChatMessage[] = r.messages ?? [{ role: 'user', content: r.prompt ?? '' }];
    if (this.mode === 'chat') {
      const wire = messages.map((m) => typeof m.content === 'string' ? m : {
        role: m.role, content: m.content.map((p) => p.type === 'image_url' ? { type: 'image_url', image_url: { url: imageUrl(p.image_url.url) } } : p),
      });
      return { path: '/chat/completions', body: { ...common, messages: wire } };
    }
    if (r.messages?.some((m) => typeof m.content !== 'string' && m.content.some((p) => p.type === 'image_url')))
      throw new InputError(`endpoint ${this.base}: an item has images, which /v1/completions cannot take; use --endpoint-mode chat`);
    return { path: '/completions', body: { ...common, prompt: r.prompt ?? messagesToText(messages) } };
  }

  private async generateOne(req: { path: string; body: Record<string, unknown> }): Promise<string> {
    const url = this.base + req.path;
    const reply = await postJson(url, req.body, this.headers, this.retry, this.stats) as { choices?: { text?: string; message?: { content?: unknown } }[] };
    const c = reply.choices?.[0];
    if (this.mode === 'chat') {
      const content = c?.message?.content;
      if (typeof content === 'string') return content;
      if (Array.isArray(content)) return content.map((p) => (p as { text?: string }).text ?? '').join('');
      if (content === null) return '';
      throw new LumenError(`${url}: the reply has no choices[0].message.content`);
    }
    if (typeof c?.text !== 'string') throw new LumenError(`${url}: the reply has no choices[0].text`);
    return c.text;
  }
}
