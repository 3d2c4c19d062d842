/**
 * The OpenAI-compatible HTTP server: routes, API key, limits, metrics and graceful shutdown,
 * around one continuous-batching engine (see http.ts for why node:http).
 *
 *   GET  /                      the chat page (no key)
 *   GET  /health                liveness and load (no key)
 *   GET  /metrics               Prometheus text
 *   GET  /v1/models[/ID]        the served model
 *   POST /v1/chat/completions   chat, images, streaming
 *   POST /v1/completions        text completions, echo + logprobs
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InputError } from '../util/errors.ts';
import { chatCompletions } from './chat-completions.ts';
import { completions } from './completions.ts';
import { Engine, type EngineOptions } from './engine.ts';
import { ApiError, parseJson, readBody, sendError, sendJson } from './http.ts';
import { resolveLimits, type ServerLimits } from './limits.ts';
import { ServerMetrics } from './metrics.ts';
import type { InferenceModel } from './model.ts';
import type { CancelReason, RequestContext } from './request.ts';

export interface ServerOptions {
  model: InferenceModel;
  /** When set, /v1/* and /metrics need `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  limits?: Partial<ServerLimits>;
  /** Engine tuning beyond the limits (prefill chunk, batch token budget). */
  engine?: Pick<EngineOptions, 'prefillChunk' | 'maxBatchTokens'>;
  /** Where to log unexpected errors (default: console.error). */
  log?: (msg: string) => void;
}

/** A running (or ready to run) server. */
export interface LumenServer {
  readonly http: Server;
  readonly engine: Engine;
  readonly metrics: ServerMetrics;
  readonly limits: ServerLimits;
  /** Starts listening; resolves to the base URL (http://host:port). */
  listen(port?: number, host?: string): Promise<string>;
  /**
   * Graceful shutdown: refuse new requests (503), let in-flight ones finish for up to
   * `shutdownGraceMs`, then end the rest (streams get an error event and `data: [DONE]`),
   * and close the listener and connections.
   */
  shutdown(): Promise<void>;
}

const PAGE_URL = new URL('./web/index.html', import.meta.url);

function keyDigest(k: string): Buffer { return createHash('sha256').update(k).digest(); }

/** Builds the server (not listening yet). */
export function createServer(opts: ServerOptions): LumenServer {
  const model = opts.model;
  const limits = resolveLimits(opts.limits);
  const log = opts.log ?? ((m: string) => console.error(m));
  let engine!: Engine;
  const metrics = new ServerMetrics({ queueDepth: () => engine.queueDepth, activeSequences: () => engine.activeSequences });
  engine = new Engine(model, {
    ...opts.engine, maxSequences: limits.maxSequences, maxQueue: limits.maxQueue,
    hooks: {
      onFirstToken: (ms) => metrics.ttft.observe(ms / 1000),
      onToken: (ms) => metrics.tokenLatency.observe(ms / 1000),
      onFinish: (r) => {
        metrics.promptTokens.inc({}, r.promptTokens);
        metrics.generatedTokens.inc({}, r.completionTokens);
        if (r.finishReason === 'cancelled') metrics.cancelled.inc();
      },
    },
  });
  const page = readFileSync(PAGE_URL);
  const keyHash = opts.apiKey ? keyDigest(opts.apiKey) : null;
  const started = Math.floor(Date.now() / 1000);
  const inflight = new Set<(r: CancelReason) => void>();
  let shuttingDown = false;

  const authorized = (req: IncomingMessage): boolean => {
    if (!keyHash) return true;
    const h = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(h);
    return m !== null && timingSafeEqual(keyDigest(m[1]!.trim()), keyHash);
  };

  // vision models also say in which order their training prompts put image and text (the chat page follows it)
  const modelCard = () => ({
    id: model.name, object: 'model', created: started, owned_by: 'lumen', context_length: model.contextLength, vision: model.vision !== null,
    ...(model.vision ? { image_placement: model.vision.imagePlacement ?? 'first' } : {}),
  });

  async function generate(req: IncomingMessage, res: ServerResponse, handler: (ctx: RequestContext, body: unknown) => Promise<void>): Promise<void> {
    const body = parseJson(await readBody(req, limits.maxBodyBytes));
    if (shuttingDown) throw new ApiError(503, 'the server is shutting down', 'service_unavailable_error', null, 'shutting_down');
    const ac = new AbortController();
    let reason: CancelReason | null = null;
    const cancel = (r: CancelReason) => { if (!reason) { reason = r; ac.abort(r); } };
    const timer = setTimeout(() => cancel('timeout'), limits.requestTimeoutMs);
    timer.unref();
    const onClose = () => { if (!res.writableEnded) cancel('client'); };
    res.on('close', onClose);
    inflight.add(cancel);
    try {
      await handler({ model, engine, metrics, limits, res, signal: ac.signal, cancelReason: () => reason }, body);
    } finally {
      clearTimeout(timer);
      inflight.delete(cancel);
      res.off('close', onClose);
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const only = (m: string) => {
      if (method !== m) throw new ApiError(405, `${path} accepts ${m}, got ${method}`, 'invalid_request_error', null, 'method_not_allowed');
    };
    if (path === '/' || path === '/index.html') {
      only('GET');
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': String(page.length), 'Cache-Control': 'no-cache', 'Content-Security-Policy': "default-src 'self'; img-src 'self' data: blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'" });
      res.end(page);
      return;
    }
    if (path === '/health') {
      only('GET');
      sendJson(res, shuttingDown ? 503 : 200, { status: shuttingDown ? 'shutting_down' : 'ok', model: model.name, active_sequences: engine.activeSequences, queue_depth: engine.queueDepth });
      return;
    }
    if (path === '/metrics' || path.startsWith('/v1/')) {
      if (!authorized(req)) throw new ApiError(401, 'missing or wrong API key; send the header Authorization: Bearer <key>', 'authentication_error', null, 'invalid_api_key');
    }
    switch (path) {
      case '/metrics':
        only('GET');
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(metrics.render());
        return;
      case '/v1/models':
        only('GET');
        sendJson(res, 200, { object: 'list', data: [modelCard()] });
        return;
      case '/v1/chat/completions':
        only('POST');
        return generate(req, res, chatCompletions);
      case '/v1/completions':
        only('POST');
        return generate(req, res, completions);
    }
    if (path.startsWith('/v1/models/')) {
      only('GET');
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      if (id !== model.name) throw new ApiError(404, `model '${id}' does not exist; this server serves '${model.name}'`, 'not_found_error', 'model', 'model_not_found');
      sendJson(res, 200, modelCard());
      return;
    }
    throw new ApiError(404, `no route ${method} ${path}; see /v1/chat/completions, /v1/completions, /v1/models, /health, /metrics`, 'not_found_error', null, 'not_found');
  }

  const http = createHttpServer((req, res) => {
    const endpoint = routeLabel(req.url ?? '/');
    res.on('close', () => metrics.requests.inc({ endpoint, status: String(res.writableFinished ? res.statusCode : 499) }));
    route(req, res).catch((e: unknown) => {
      let err: ApiError;
      if (e instanceof ApiError) err = e;
      else if (e instanceof InputError) err = new ApiError(400, e.message, 'invalid_request_error', null, 'invalid_value');
      else {
        log(`lumen serve: ${req.method} ${req.url}: ${(e as Error)?.stack ?? String(e)}`);
        err = new ApiError(500, `internal error: ${(e as Error)?.message ?? String(e)}`, 'server_error', null, 'internal_error');
      }
      if (!res.headersSent) sendError(res, err);
      else if (!res.writableEnded) res.end();
    });
  });
  http.keepAliveTimeout = 5_000;

  return {
    http, engine, metrics, limits,
    listen(port = 8080, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(port, host, () => {
          http.off('error', reject);
          const a = http.address() as AddressInfo;
          const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          resolve(`http://${h}:${a.port}`);
        });
      });
    },
    async shutdown() {
      if (shuttingDown) return;
      shuttingDown = true;
      engine.close();
      const closed = new Promise<void>((r) => http.close(() => r()));
      http.closeIdleConnections();
      const grace = new Promise<'late'>((r) => setTimeout(() => r('late'), limits.shutdownGraceMs).unref());
      if ((await Promise.race([engine.idle().then(() => 'idle' as const), grace])) === 'late') {
        for (const cancel of [...inflight]) cancel('shutdown');
        await engine.idle();
      }
      // let the handlers write their last bytes, then drop what is left
      await new Promise((r) => setImmediate(r));
      http.closeIdleConnections();
      setTimeout(() => http.closeAllConnections(), 1_000).unref();
      await closed;
    },
  };
}

/** Bounded metric label for a URL (no user-controlled label values). */
function routeLabel(url: string): string {
  const p = url.split('?')[0]!.replace(/\/+$/, '') || '/';
  if (p.startsWith('/v1/models')) return '/v1/models';
  return ['/', '/index.html', '/health', '/metrics', '/v1/chat/completions', '/v1/completions'].includes(p) ? p : 'other';
}
