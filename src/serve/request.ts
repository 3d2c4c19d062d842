/**
 * What the two generation endpoints share: the per-request context, sampling settings from an
 * OpenAI body, the max_tokens rules, and submitting to the engine with errors mapped to HTTP.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { InputError } from '../util/errors.ts';
import { Engine, EngineBusyError, EngineClosedError, type GenerateRequest, type Generation } from './engine.ts';
import { ApiError } from './http.ts';
import type { ServerLimits } from './limits.ts';
import type { ServerMetrics } from './metrics.ts';
import type { InferenceModel } from './model.ts';
import type { SamplingParams } from './sampling.ts';

/** Why a request's generation was cut short. */
export type CancelReason = 'client' | 'timeout' | 'shutdown';

/** Everything a handler needs for one request. */
export interface RequestContext {
  model: InferenceModel;
  engine: Engine;
  metrics: ServerMetrics;
  limits: ServerLimits;
  res: ServerResponse;
  /** Aborted when the client goes away, the request times out or the server shuts down. */
  signal: AbortSignal;
  /** Set before `signal` aborts. */
  cancelReason: () => CancelReason | null;
}

/** Sampling settings of an OpenAI body (validated ranges; null = default). */
export function samplingFrom(r: { temperature?: number | null; top_p?: number | null; top_k?: number | null; seed?: number | null; presence_penalty?: number | null; frequency_penalty?: number | null }): SamplingParams {
  const p: SamplingParams = {
    temperature: r.temperature ?? 1,
    topP: r.top_p ?? 1,
    topK: r.top_k != null && r.top_k > 0 ? r.top_k : 0,
    presencePenalty: r.presence_penalty ?? 0,
    frequencyPenalty: r.frequency_penalty ?? 0,
  };
  if (r.seed != null) p.seed = Number(BigInt.asUintN(32, BigInt(r.seed)));
  return p;
}

/**
 * Checks prompt size and resolves max_tokens: the request's value (refused above the server
 * limit or beyond the context), else as many as fit up to the server limit (or `fallback`).
 */
export function resolveMaxTokens(ctx: RequestContext, positions: number, requested: number | null | undefined, param: string, fallback?: number, promptParam = 'messages'): number {
  const ctxLen = ctx.model.contextLength;
  const promptLimit = Math.min(ctx.limits.maxPromptTokens || ctxLen, ctxLen);
  if (positions > promptLimit) {
    throw new ApiError(400, `the prompt has ${positions} tokens, above the limit of ${promptLimit}`, 'invalid_request_error', promptParam, 'context_length_exceeded');
  }
  if (requested != null) {
    if (requested > ctx.limits.maxTokens) throw new ApiError(400, `${param}: ${requested} is above this server's limit of ${ctx.limits.maxTokens}`, 'invalid_request_error', param, 'invalid_value');
    if (positions + requested > ctxLen) {
      throw new ApiError(400, `this model's maximum context length is ${ctxLen} tokens, but ${positions + requested} were requested (${positions} in the prompt, ${requested} to generate)`, 'invalid_request_error', param, 'context_length_exceeded');
    }
    return requested;
  }
  const room = ctxLen - positions;
  if (room < 1) throw new ApiError(400, `the prompt has ${positions} tokens and fills the model's context of ${ctxLen}`, 'invalid_request_error', promptParam, 'context_length_exceeded');
  return Math.min(fallback ?? ctx.limits.maxTokens, ctx.limits.maxTokens, room);
}

/** Submits to the engine, mapping its refusals to HTTP errors. */
export function submit(ctx: RequestContext, req: GenerateRequest): Generation {
  try {
    return ctx.engine.submit({ signal: ctx.signal, ...req });
  } catch (e) {
    if (e instanceof EngineBusyError) throw new ApiError(429, `server busy: ${e.message}`, 'rate_limit_error', null, 'server_busy');
    if (e instanceof EngineClosedError) throw new ApiError(503, e.message, 'service_unavailable_error', null, 'shutting_down');
    if (e instanceof InputError) throw new ApiError(400, e.message, 'invalid_request_error', null, 'invalid_value');
    throw e;
  }
}

/** The error for a generation cut short for a reason other than the client leaving. */
export function cancelError(reason: CancelReason | null, limits: ServerLimits): ApiError {
  if (reason === 'timeout') return new ApiError(503, `request timed out after ${limits.requestTimeoutMs} ms`, 'service_unavailable_error', null, 'timeout');
  return new ApiError(503, 'the server is shutting down', 'service_unavailable_error', null, 'shutting_down');
}

/** An id like OpenAI's: prefix + 24 hex digits. */
export function responseId(prefix: string): string {
  return `${prefix}-${randomUUID().replace(/-/g, '').slice(0, 24)}`;
}

/** Refuses a model name other than the served one (404, as OpenAI does). */
export function checkModel(ctx: RequestContext, name: string): void {
  if (name !== ctx.model.name) throw new ApiError(404, `model '${name}' does not exist; this server serves '${ctx.model.name}'`, 'not_found_error', 'model', 'model_not_found');
}
