/**
 * HTTP plumbing for the server on node:http: OpenAI-shaped errors, bounded body reading, JSON
 * and server-sent-event responses.
 *
 * Why node:http rather than a framework: the server streams tokens over SSE and must notice a
 * client going away at once (to free its batch slot), control exactly when headers and each
 * event are flushed, and bound every body it reads; node:http gives that directly with no
 * dependency and no per-request framework overhead. The routes are few and fixed, and request
 * bodies are validated with zod (see openai.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LumenError } from '../util/errors.ts';

export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error' | 'service_unavailable_error';

/** An error with the HTTP status and OpenAI error fields to answer it with. */
export class ApiError extends LumenError {
  constructor(readonly status: number, message: string, readonly type: ErrorType = 'invalid_request_error', readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
}

/** The OpenAI error body. */
export function errorBody(e: ApiError): { error: { message: string; type: string; param: string | null; code: string | null } } {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

/** Writes a JSON response (unless the connection is gone). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, e: ApiError): void {
  const headers: Record<string, string> = {};
  if (e.status === 429 || e.status === 503) headers['Retry-After'] = '1';
  sendJson(res, e.status, errorBody(e), headers);
}

/** Extra bytes of an over-size body read and thrown away so the client can read the 413; beyond, the connection is cut. */
const MAX_DISCARD = 64 * 1024 * 1024;

/** Reads the whole body, refusing (413) more than `maxBytes`. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooBig = (n: number) => new ApiError(413, `request body of ${n} bytes is above the limit of ${maxBytes} bytes`, 'invalid_request_error', null, 'request_too_large');
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      discard(req);
      reject(tooBig(declared));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > maxBytes) {
        failed = true;
        chunks.length = 0;
        discard(req);
        reject(tooBig(size));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => { if (!failed) resolve(Buffer.concat(chunks)); });
    req.on('error', (e) => { if (!failed) { failed = true; reject(new ApiError(400, `could not read the request body: ${e.message}`)); } });
  });
}

function discard(req: IncomingMessage): void {
  let extra = 0;
  req.removeAllListeners('data');
  req.on('data', (c: Buffer) => { extra += c.length; if (extra > MAX_DISCARD) req.destroy(); });
  req.resume();
}

/** Parses a JSON body, 400 when it is not JSON or not an object. */
export function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw new ApiError(400, 'request body is empty; expected a JSON object');
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new ApiError(400, `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ApiError(400, `request body must be a JSON object, got ${Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v}`);
  return v;
}

/** A server-sent-event stream on a response. */
export class SseStream {
  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
  }

  /** False once the client is gone. */
  get open(): boolean { return !this.res.destroyed && !this.res.writableEnded; }

  send(data: unknown): void {
    if (this.open) this.res.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** Ends the stream with `data: [DONE]`. */
  done(): void {
    if (!this.open) return;
    this.res.write('data: [DONE]\n\n');
    this.res.end();
  }
}
