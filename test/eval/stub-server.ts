/**
 * A tiny OpenAI-compatible stub for endpoint tests, on 127.0.0.1 with a random port:
 * /v1/completions (echo + logprobs, or generation) and /v1/chat/completions. Tokens are
 * whitespace-led words; each token's log probability comes from `tokenLogprob`, which the
 * matching FakeModel uses too, so scores through HTTP can be compared with direct ones.
 */
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Splits text into tokens: each run of whitespace goes with the word after it. */
export function tokenize(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

/** The log probability the stub assigns to `token` after `prefix`: a letter named by "prefer X" in the prefix is likely. */
export function tokenLogprob(prefix: string, token: string): number {
  const m = /prefer (\w)/.exec(prefix);
  if (m && token === ` ${m[1]}`) return -0.25;
  return -1 - 0.125 * token.length;
}

/** The same scoring as a direct function of (context, continuation), for a FakeModel. */
export function stubLoglik(context: string, continuation: string): number {
  let lp = 0, at = context.length;
  for (const t of tokenize(continuation)) { lp += tokenLogprob(context + continuation.slice(0, at - context.length), t); at += t.length; }
  return lp;
}

export interface StubOptions {
  /** Answer 400 to max_tokens 0 (the server then needs 1 and appends a token). */
  rejectZeroMaxTokens?: boolean;
  /** HTTP statuses to answer with, in order, before serving normally. */
  failures?: number[];
  /** Generation for a prompt or the last user message text. */
  reply?: (text: string, body: Record<string, unknown>) => string;
  /** Delay before answering, to observe concurrency. */
  delayMs?: number;
}

export interface Stub {
  url: string;
  requests: { path: string; body: Record<string, unknown> }[];
  /** Most requests ever open at once. */
  maxInFlight: () => number;
  close: () => Promise<void>;
}

function send(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

/** Starts the stub. */
export async function startStub(opts: StubOptions = {}): Promise<Stub> {
  const failures = [...(opts.failures ?? [])];
  const requests: Stub['requests'] = [];
  const reply = opts.reply ?? (() => 'ok');
  let inFlight = 0, maxInFlight = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let data = '';
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('finish', () => { inFlight--; });
    req.on('data', (c) => { data += c; });
    req.on('end', () => setTimeout(() => {
      const body = JSON.parse(data) as Record<string, unknown>;
      requests.push({ path: req.url ?? '', body });
      const fail = failures.shift();
      if (fail !== undefined) return send(res, fail, { error: { message: `stub failure ${fail}` } }, { 'retry-after': '0' });
      if (req.url === '/v1/completions') {
        const prompt = String(body.prompt);
        if (body.echo) {
          if (body.max_tokens === 0 && opts.rejectZeroMaxTokens) return send(res, 400, { error: { message: 'max_tokens must be at least 1' } });
          const tokens = tokenize(prompt), lps: (number | null)[] = [], offs: number[] = [], top: Record<string, number>[] = [];
          let at = 0;
          tokens.forEach((t, i) => {
            const lp = i === 0 ? null : tokenLogprob(prompt.slice(0, at), t);
            lps.push(lp); offs.push(at); top.push(lp === null ? {} : { [t]: lp });
            at += t.length;
          });
          if ((body.max_tokens as number) > 0) { tokens.push(' extra'); lps.push(-0.5); offs.push(prompt.length); top.push({ ' extra': -0.5 }); }
          return send(res, 200, { choices: [{ text: prompt, logprobs: { tokens, token_logprobs: lps, top_logprobs: top, text_offset: offs } }] });
        }
        return send(res, 200, { choices: [{ text: reply(prompt, body) }] });
      }
      if (req.url === '/v1/chat/completions') {
        const msgs = body.messages as { content: string | { type: string; text?: string }[] }[];
        const last = msgs[msgs.length - 1]!.content;
        const text = typeof last === 'string' ? last : last.filter((p) => p.type === 'text').map((p) => p.text).join('');
        return send(res, 200, { choices: [{ message: { role: 'assistant', content: reply(text, body) } }] });
      }
      send(res, 404, { error: { message: 'not found' } });
    }, opts.delayMs ?? 0));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, requests, maxInFlight: () => maxInFlight, close: () => new Promise((r) => server.close(() => r())) };
}
