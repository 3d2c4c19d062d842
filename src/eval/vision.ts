/**
 * Visual question answering accuracy of a multimodal model on the synthetic tasks
 * (src/data/visual/), per task, on the held-out split (the training distribution, samples never
 * trained on) and the compositional split (attribute combinations never seen in training).
 *
 * Answers are generated greedily from the same chat prompt as training (`[image] question`) and
 * compared by exact match after trimming, lower-casing and dropping a final full stop.
 *
 * Result keys are `<task>/<split>` (e.g. `color/heldout`, `color/compositional`); `splits` holds
 * the mean over tasks of each split, and `gap` the held-out minus compositional accuracy per task.
 */
import { VisualDataset, type VisualTask, type Split } from '../data/visual/index.ts';
import type { MultimodalModel } from '../models/multimodal.ts';

export interface VisionEvalOptions {
  tasks: readonly VisualTask[];
  /** Samples per task and split. */
  n: number;
  splits?: readonly Split[];
  /** Generator seed of the evaluation samples (default 20261). */
  seed?: number;
  /** Prompts answered together (default 64). */
  batchSize?: number;
  /** Most answer tokens (default 12). */
  maxTokens?: number;
  /** Directory for rendered samples (none: render in memory). */
  cacheDir?: string;
  /** Called after each batch with (done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Keep the first few mistakes per task/split (default 3). */
  keepMistakes?: number;
  /** Where the image goes in the prompt: 'first' (default, `[image] question`) or 'last' (`question [image]`), as the model was trained. */
  imagePlacement?: 'first' | 'last';
}

export interface VisionEvalResult {
  tasks: Record<string, { accuracy: number; n: number }>;
  splits: Record<string, { accuracy: number; n: number }>;
  mistakes: Record<string, { question: string; answer: string; got: string }[]>;
}

/** Normal form for exact-match comparison. */
export function normaliseAnswer(s: string): string {
  return s.trim().toLowerCase().replace(/\.$/, '').trim();
}

/** Runs the evaluation. */
export async function evaluateVision(model: MultimodalModel, o: VisionEvalOptions): Promise<VisionEvalResult> {
  const splits = o.splits ?? (['heldout', 'compositional'] as const);
  const bs = o.batchSize ?? 64, keep = o.keepMistakes ?? 3;
  const size = model.config.vision.imageSize;
  const res: VisionEvalResult = { tasks: {}, splits: {}, mistakes: {} };
  const total = o.tasks.length * splits.length * o.n;
  let done = 0;
  for (const split of splits) {
    let sumAcc = 0, sumN = 0;
    for (const task of o.tasks) {
      const ds = new VisualDataset({ tasks: [task], split, seed: o.seed ?? 20261, size, cacheDir: o.cacheDir });
      let correct = 0;
      const key = `${task}/${split}`;
      res.mistakes[key] = [];
      for (let start = 0; start < o.n; start += bs) {
        const samples = await ds.batch(start, Math.min(bs, o.n - start));
        const prompt = (s: (typeof samples)[number]) => {
          const image = { type: 'image' as const, pixels: s.image }, text = { type: 'text' as const, text: s.question };
          return o.imagePlacement === 'last' ? [text, image] : [image, text];
        };
        const answers = model.answerBatch(samples.map(prompt),
          { maxTokens: o.maxTokens ?? 12 });
        samples.forEach((s, i) => {
          if (normaliseAnswer(answers[i]!) === normaliseAnswer(s.answer)) correct++;
          else if (res.mistakes[key]!.length < keep) res.mistakes[key]!.push({ question: s.question, answer: s.answer, got: answers[i]! });
        });
        done += samples.length;
        o.onProgress?.(done, total);
      }
      res.tasks[key] = { accuracy: correct / o.n, n: o.n };
      sumAcc += correct / o.n; sumN += o.n;
    }
    res.splits[split] = { accuracy: sumAcc / o.tasks.length, n: sumN };
  }
  return res;
}

/** A plain-text table: one row per task, a column per split (accuracy and count), and the gap. */
export function formatVisionTable(r: VisionEvalResult, tasks: readonly string[], splits: readonly string[] = ['heldout', 'compositional']): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const head = ['task'.padEnd(14), ...splits.map((s) => s.padStart(20)), ...(splits.length === 2 ? ['gap'.padStart(8)] : [])].join(' ');
  const lines = [head, '-'.repeat(head.length)];
  for (const t of tasks) {
    const cells = splits.map((s) => { const e = r.tasks[`${t}/${s}`]; return (e ? `${pct(e.accuracy)} (n=${e.n})` : '-').padStart(20); });
    const gap = splits.length === 2 && r.tasks[`${t}/${splits[0]}`] && r.tasks[`${t}/${splits[1]}`]
      ? `${(100 * (r.tasks[`${t}/${splits[0]}`]!.accuracy - r.tasks[`${t}/${splits[1]}`]!.accuracy)).toFixed(1)}`.padStart(8) : '';
    lines.push([t.padEnd(14), ...cells, gap].join(' ').trimEnd());
  }
  lines.push('-'.repeat(head.length));
  lines.push(['mean'.padEnd(14), ...splits.map((s) => { const e = r.splits[s]; return (e ? `${pct(e.accuracy)} (n=${e.n})` : '-').padStart(20); })].join(' '));
  return lines.join('\n');
}
