/**
 * POST /v1/completions (the legacy text API): raw prompts (special tokens allowed, so a client
 * may write the chat template itself), `echo` and `logprobs` with prompt-token logprobs, so
 * loglikelihood-based evaluation harnesses can score text against the server.
 */
import type { Generation, GenerationResult, TokenInfo } from './engine.ts';
import { ApiError, SseStream, sendJson } from './http.ts';
import { appendLegacyLogprobs, completionRequestSchema, stopList, validate, type LegacyLogprobs } from './openai.ts';
import { cancelError, checkModel, resolveMaxTokens, responseId, samplingFrom, submit, type RequestContext } from './request.ts';

/** OpenAI's default max_tokens for completions. */
const DEFAULT_MAX_TOKENS = 16;

interface Prompt { ids: number[]; text: string }

/** Handles one completions request (one choice per prompt). */
export async function completions(ctx: RequestContext, body: unknown): Promise<void> {
  const r = validate(completionRequestSchema, body);
  checkModel(ctx, r.model);
  const tk = ctx.model.tokenizer;
  const raw = r.prompt;
  const list: (string | number[])[] = typeof raw === 'string' ? [raw] : typeof raw[0] === 'number' ? [raw as number[]] : (raw as (string | number[])[]);
  const prompts: Prompt[] = list.map((p, i) => {
    if (typeof p === 'string') {
      if (p.length === 0) throw new ApiError(400, `prompt${list.length > 1 ? `[${i}]` : ''}: is empty`, 'invalid_request_error', 'prompt', 'invalid_value');
      return { ids: tk.encode(p, { allowedSpecial: 'all' }), text: p };
    }
    const bad = p.find((t) => t >= ctx.model.vocabSize);
    if (bad !== undefined) throw new ApiError(400, `prompt: token id ${bad} is outside the vocabulary of ${ctx.model.vocabSize}`, 'invalid_request_error', 'prompt', 'invalid_value');
    return { ids: p, text: tk.decode(p) };
  });
  const k = r.logprobs ?? null;
  const echo = r.echo === true;
  const stream = r.stream === true;
  const sampling = samplingFrom(r);
  const stop = stopList(r.stop);
  const plans = prompts.map((p) => {
    const positions = ctx.engine.promptPositions(p.ids);
    return resolveMaxTokens(ctx, positions, r.max_tokens, 'max_tokens', DEFAULT_MAX_TOKENS, 'prompt');
  });
  const gens: Generation[] = [];
  const local = new AbortController();
  const signal = prompts.length > 1 ? AbortSignal.any([ctx.signal, local.signal]) : ctx.signal;
  try {
    prompts.forEach((p, i) => gens.push(submit(ctx, {
      prompt: p.ids, maxTokens: plans[i]!, sampling, stop, logprobs: k, promptLogprobs: echo && k !== null, stream, signal, ...(r.ignore_eos ? { stopTokenIds: [] } : {}),
    })));
  } catch (e) {
    local.abort(); // all or nothing: one refused prompt cancels those already queued
    throw e;
  }
  const id = responseId('cmpl');
  const created = Math.floor(Date.now() / 1000);
  const base = { id, object: 'text_completion', created, model: ctx.model.name, system_fingerprint: null };
  const usage = (rs: GenerationResult[]) => {
    const p = rs.reduce((s, g) => s + g.promptTokens, 0), c = rs.reduce((s, g) => s + g.completionTokens, 0);
    return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c };
  };
  const newLogprobs = (): LegacyLogprobs => ({ tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] });

  if (!stream) {
    let results: GenerationResult[];
    try {
      results = await Promise.all(gens.map((g) => g.result));
    } catch (e) {
      local.abort(); // one failed: stop the others
      throw e;
    }
    if (results.some((g) => g.finishReason === 'cancelled')) {
      if (ctx.cancelReason() === 'client') return;
      throw cancelError(ctx.cancelReason(), ctx.limits);
    }
    const choices = results.map((g, i) => {
      const p = prompts[i]!;
      let logprobs: LegacyLogprobs | null = null;
      if (k !== null) {
        logprobs = newLogprobs();
        if (echo) appendLegacyLogprobs(logprobs, tk, p.ids, g.promptLogprobs ?? [], 0);
        appendLegacyLogprobs(logprobs, tk, g.tokens.map((t) => t.id), g.tokens, echo ? p.text.length : 0);
      }
      return { text: (echo ? p.text : '') + g.text, index: i, logprobs, finish_reason: g.finishReason };
    });
    sendJson(ctx.res, 200, { ...base, choices, usage: usage(results) });
    return;
  }

  const sse = new SseStream(ctx.res);
  const includeUsage = r.stream_options?.include_usage === true;
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({ ...base, choices, ...(includeUsage ? { usage: null } : {}), ...extra });
  let failed: Error | null = null;
  const results = await Promise.all(gens.map(async (g, i) => {
    const p = prompts[i]!;
    let offset = 0;
    const sendEcho = (infos: (TokenInfo | null)[]) => {
      let lp: LegacyLogprobs | null = null;
      if (k !== null) { lp = newLogprobs(); appendLegacyLogprobs(lp, tk, p.ids, infos, 0); }
      sse.send(chunk([{ text: p.text, index: i, logprobs: lp, finish_reason: null }]));
      offset = p.text.length;
    };
    // with logprobs the echo waits for the prompt's logprobs (the engine's first event)
    if (echo && k === null) sendEcho([]);
    for await (const ev of g) {
      if (ev.promptLogprobs) { if (echo) sendEcho(ev.promptLogprobs); continue; }
      if (!ev.text && (k === null || ev.tokens.length === 0)) continue;
      let lp: LegacyLogprobs | null = null;
      if (k !== null) { lp = newLogprobs(); offset = appendLegacyLogprobs(lp, tk, ev.tokens.map((t) => t.id), ev.tokens, offset); }
      sse.send(chunk([{ text: ev.text, index: i, logprobs: lp, finish_reason: null }]));
    }
    try {
      const res = await g.result;
      if (res.finishReason !== 'cancelled') sse.send(chunk([{ text: '', index: i, logprobs: null, finish_reason: res.finishReason }]));
      return res;
    } catch (e) { failed = e as Error; return null; }
  }));
  if (failed) {
    sse.send({ error: { message: `generation failed: ${(failed as Error).message}`, type: 'server_error', param: null, code: 'generation_failed' } });
    sse.done();
    return;
  }
  if (results.some((g) => g === null || g.finishReason === 'cancelled')) {
    if (ctx.cancelReason() !== 'client') {
      const err = cancelError(ctx.cancelReason(), ctx.limits);
      sse.send({ error: { message: err.message, type: err.type, param: null, code: err.code } });
      sse.done();
    }
    return;
  }
  if (includeUsage) sse.send(chunk([], { usage: usage(results as GenerationResult[]) }));
  sse.done();
}
