/**
 * Visual questions: Lumen's synthetic visual tasks (src/data/visual/) exported as JSONL, one
 * sample per line in the data module's sample shape `{image, question, answer, task, split}`.
 * `image` is a data URL, an http(s) URL, or a path relative to the JSONL file.
 *
 * Kept apart from the other loaders on purpose: when the visual data module settles, only this
 * file follows it.
 */
import { dirname, resolve, basename } from 'node:path';
import { existsSync } from 'node:fs';
import type { EvalItem } from '../item.ts';
import { parseJsonl, RowReader } from './jsonl.ts';

/** The visual data module's sample type, as this loader expects it. */
export interface VisualSample {
  image: string;
  question: string;
  answer: string;
  task: string;
  split: string;
}

/** Converts visual samples to evaluation items (image paths resolve against `baseDir`). */
export function visualSamplesToItems(samples: VisualSample[], baseDir: string, idPrefix: string): EvalItem[] {
  return samples.map((s, i) => ({
    id: `${idPrefix}#${i}`,
    question: s.question,
    answer: s.answer,
    images: [/^(data:|https?:)/.test(s.image) ? s.image : resolve(baseDir, s.image)],
    fields: { task: s.task, split: s.split },
  }));
}

/** Parses a JSONL export of visual samples; image files must exist. */
export function loadVisualJsonl(text: string, file: string): EvalItem[] {
  const dir = dirname(file);
  return parseJsonl(text, file).map((row) => {
    const r = new RowReader(file, row);
    const sample: VisualSample = {
      image: r.string('image'), question: r.string('question'), answer: r.string('answer'),
      task: typeof r.get('task') === 'string' ? r.string('task') : 'visual',
      split: typeof r.get('split') === 'string' ? r.string('split') : 'test',
    };
    if (!/^(data:|https?:)/.test(sample.image) && !existsSync(resolve(dir, sample.image)))
      r.fail(`field 'image': file '${resolve(dir, sample.image)}' does not exist`);
    const [item] = visualSamplesToItems([sample], dir, `${basename(file)}:${row.line}`);
    return { ...item!, id: `${basename(file)}:${row.line}` };
  });
}

/** Settings of a generated visual set (format `visual`). */
export interface GeneratedVisualSpec {
  /** Task names of src/data/visual (color, shape, count, bar_value, ...), mixed round robin. */
  tasks: string[];
  /** train | heldout | compositional. */
  split: string;
  seed: number;
  n: number;
  /** Image side in pixels. */
  size: number;
}

/** Renders `n` samples with Lumen's visual data module; images travel as PNG data URLs. */
export async function generateVisual(spec: GeneratedVisualSpec): Promise<EvalItem[]> {
  const v = await import('../../data/visual/index.ts');
  const tasks = spec.tasks.map((t) => v.checkTask(t));
  const split = v.checkSplit(spec.split);
  const samples: VisualSample[] = [];
  for (let i = 0; i < spec.n; i++) {
    const task = tasks[i % tasks.length]!;
    const s = v.visualSpec(task, split, spec.seed, i);
    const png = await v.rgbToPng(await v.renderSvg(s.svg, spec.size), spec.size);
    samples.push({ image: `data:image/png;base64,${Buffer.from(png).toString('base64')}`, question: s.question, answer: s.answer, task, split });
  }
  return visualSamplesToItems(samples, '.', `visual-${spec.split}-s${spec.seed}`);
}
