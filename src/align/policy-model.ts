/**
 * Sampling completions for alignment (rollouts and evaluation) through the serving engine
 * (KV cache, continuous batching), with a text GPT served by src/serve/gpt-model.ts. The weights
 * are shared with the GPT object, so a PPO update is visible to the next rollout without copying.
 */
import type { InferenceModel } from '../serve/model.ts';
export { GPTInferenceModel } from '../serve/gpt-model.ts';
import { Engine } from '../serve/engine.ts';

/** One sampled completion of a prompt. */
export interface Completion {
  /** Generated token ids, including a final `<|end|>` when the model ended the answer itself. */
  ids: number[];
  text: string;
  /** True when the model ended with `<|end|>` (not cut by the token limit). */
  ended: boolean;
}

export interface CompletionOptions {
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** Seed of the first request; request i uses seed + i. */
  seed: number;
  /** Sequences generated at once (default 16). */
  batch?: number;
}

/**
 * Generates one completion per prompt (token ids ending in `<|assistant|>`) through the serving
 * engine. Only `<|end|>` stops generation, so every token of `ids` was sampled by the model.
 */
export async function complete(model: InferenceModel, prompts: readonly number[][], o: CompletionOptions): Promise<Completion[]> {
  const end = model.tokenizer.specialTokenId('<|end|>');
  const engine = new Engine(model, { maxSequences: o.batch ?? 16, maxQueue: Math.max(256, prompts.length) });
  try {
    const gens = prompts.map((p, i) => engine.submit({
      prompt: p, maxTokens: o.maxTokens, stopTokenIds: [end],
      sampling: { temperature: o.temperature, topP: 1, topK: 0, seed: o.seed + i, presencePenalty: 0, frequencyPenalty: 0 },
    }));
    const results = await Promise.all(gens.map((g) => g.result));
    return results.map((r) => {
      const ids = r.tokens.map((t) => t.id);
      const ended = r.finishReason === 'stop';
      if (ended) ids.push(end);
      return { ids, text: r.text, ended };
    });
  } finally {
    engine.close();
  }
}
