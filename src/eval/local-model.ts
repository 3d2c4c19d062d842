/**
 * A local Lumen model directory as an `EvalModel`. The model is served in-process on a private
 * loopback port and scored through the same OpenAI-compatible client as any endpoint — so a
 * task file runs through literally the same path locally and remotely (chat template, images,
 * prompt logprobs), and continuous batching serves the concurrent requests.
 */
import { loadInferenceModel } from '../serve/load.ts';
import { createServer } from '../serve/server.ts';
import { OpenAIEndpointModel } from './endpoint.ts';
import type { EvalModel } from './model.ts';

export interface LocalEvalModel extends EvalModel {
  /** Stops the in-process server. */
  close(): Promise<void>;
}

/** Loads a local Lumen model for evaluation (close() it when done). */
export async function loadLocalEvalModel(dir: string, opts: { concurrency?: number; mode?: 'chat' | 'completions' } = {}): Promise<LocalEvalModel> {
  const model = await loadInferenceModel(dir);
  const server = createServer({ model });
  const url = await server.listen(0, '127.0.0.1');
  const client = new OpenAIEndpointModel({ url, model: model.name, mode: opts.mode ?? 'completions', logprobs: true, concurrency: opts.concurrency ?? 8, cacheDir: null });
  // Prompts longer than the model's context keep their end (the question and the answer slot),
  // dropping the start of the context — the usual policy of evaluation harnesses.
  const tok = model.tokenizer, ctx = model.contextLength;
  const fit = (text: string, room: number): string => {
    const ids = tok.encode(text, { allowedSpecial: 'all' });
    return ids.length <= room ? text : tok.decode(ids.slice(ids.length - Math.max(1, room)));
  };
  return {
    name: model.name,
    supportsLoglikelihood: true,
    loglikelihood: (r) => client.loglikelihood(r.map((q) => ({ ...q, context: fit(q.context, ctx - tok.encode(q.continuation).length - 1) }))),
    generate: (r) => client.generate(r.map((q) => (q.prompt === undefined ? q : { ...q, prompt: fit(q.prompt, ctx - q.maxTokens - 1) }))),
    close: () => server.shutdown(),
  };
}
