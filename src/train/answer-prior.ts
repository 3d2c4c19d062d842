/**
 * Question-prior debiasing for visual question answering (a product of experts with a
 * question-only model, as in the VQA literature on changing priors).
 *
 * In the synthetic tasks a question often narrows its answer by itself: "what color is the
 * triangle?" is never answered "red" in training when red triangles are held out for the
 * compositional split. A model that learns the training distribution learns that prior, and on a
 * red triangle it answers with the prior instead of the pixels.
 *
 * The answer prior counts, over the training stream's own questions (no held-out sample is
 * looked at), how often each first answer token follows each question. During training, the
 * logit of answer token a after question q gets a fixed offset
 *
 *     strength · log(K · (n(q, a) + 1) / (n(q) + K))
 *
 * where K is the number of first answer tokens of the task (0 when the prior is uniform; other
 * tokens get no offset). The loss sees model + prior, so the model need not learn what the
 * question alone predicts and spends its capacity on what the image says; at inference the
 * model runs alone. Questions seen fewer than `minCount` times get no offset.
 */
import { visualSpec, type VisualTask } from '../data/visual/index.ts';
import { chatExample } from '../models/multimodal.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { InputError } from '../util/errors.ts';

export interface AnswerPriorOptions {
  /** Training samples per task counted (default 4096). */
  samples?: number;
  /** Questions seen fewer times get no offset (default 50). */
  minCount?: number;
  /** Multiplies the log-prior offsets (default 1). */
  strength?: number;
}

/** The first token of `answer` as the chat template writes an assistant turn. */
function firstAnswerToken(tok: Tokenizer, question: string, answer: string): number {
  const ex = chatExample(tok, [{ role: 'user', content: question }, { role: 'assistant', content: answer }]);
  const i = ex.learn.findIndex((l) => l !== 0);
  if (i < 0) throw new InputError(`answer prior: the chat template marks no assistant token for ${JSON.stringify(answer)}`);
  return ex.ids[i]!;
}

/** Per-question logit offsets (see the module comment). */
export class AnswerPrior {
  private readonly offsets = new Map<string, Float32Array>();

  constructor(tok: Tokenizer, tasks: readonly VisualTask[], seed: number, opts: AnswerPriorOptions = {}) {
    const samples = opts.samples ?? 4096, minCount = opts.minCount ?? 50, strength = opts.strength ?? 1;
    if (!(strength >= 0) || !Number.isFinite(strength)) throw new InputError(`answer prior: strength must be a finite number >= 0, got ${strength}`);
    const V = tok.vocabSize;
    for (const task of new Set(tasks)) {
      const counts = new Map<string, Map<number, number>>(), support = new Set<number>();
      for (let i = 0; i < samples; i++) {
        const s = visualSpec(task, 'train', seed, i);
        const a = firstAnswerToken(tok, s.question, s.answer);
        support.add(a);
        const c = counts.get(s.question) ?? counts.set(s.question, new Map()).get(s.question)!;
        c.set(a, (c.get(a) ?? 0) + 1);
      }
      const K = support.size;
      if (K < 2) continue; // one possible first token: nothing to debias
      for (const [q, c] of counts) {
        let n = 0;
        for (const v of c.values()) n += v;
        if (n < minCount) continue;
        const off = new Float32Array(V);
        for (const a of support) off[a] = strength * Math.log((K * ((c.get(a) ?? 0) + 1)) / (n + K));
        this.offsets.set(q, off);
      }
    }
  }

  /** The (V) offsets after question `q`, or undefined when it has none. */
  offset(question: string): Float32Array | undefined {
    return this.offsets.get(question);
  }

  /** Questions with offsets. */
  get size(): number {
    return this.offsets.size;
  }
}
