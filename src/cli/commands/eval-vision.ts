/**
 * `lumen eval vision --model DIR [--n N]`: accuracy of a multimodal model on the synthetic visual
 * tasks, per task, on the held-out and compositional splits (src/eval/vision.ts). Prints a table
 * and writes DIR/eval-vision.json: `{"tasks": {"<task>/<split>": {"accuracy", "n"}}, "splits": ...}`.
 */
import { join } from 'node:path';
import { parse, num } from '../args.ts';
import { loadMultimodal, readMultimodalConfig, trainedImagePlacement } from '../../models/multimodal.ts';
import { evaluateVision, formatVisionTable } from '../../eval/vision.ts';
import { VISUAL_TASK_NAMES, checkTask, checkSplit, type VisualTask } from '../../data/visual/index.ts';
import { Progress } from '../../util/progress.ts';
import { writeJsonAtomic } from '../../util/fs.ts';
import { InputError } from '../../util/errors.ts';

const OPTIONS = {
  model: { type: 'string', help: 'multimodal model directory' },
  n: { type: 'string', help: 'samples per task and split', default: '200' },
  tasks: { type: 'string', help: 'comma-separated tasks (default: the tasks the model was trained on, else all)' },
  splits: { type: 'string', help: 'comma-separated splits', default: 'heldout,compositional' },
  seed: { type: 'string', help: 'seed of the evaluation samples', default: '20261' },
  batch: { type: 'string', help: 'prompts answered together', default: '64' },
  out: { type: 'string', help: 'output JSON (default DIR/eval-vision.json)' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const p = parse('eval vision', '--model DIR [--n N]', OPTIONS, argv,
    'Per-task visual question answering accuracy on the held-out and compositional splits.');
  if (!p) return 0;
  const v = p.values;
  if (!v.model) throw new InputError('--model DIR is required');
  const cfg = readMultimodalConfig(v.model);
  const trained = (cfg.train as { tasks?: string[] } | undefined)?.tasks;
  const imagePlacement = trainedImagePlacement(cfg);   // ask in the order the model was trained with
  const tasks: VisualTask[] = v.tasks ? v.tasks.split(',').map((t) => checkTask(t.trim()))
    : [...new Set((trained ?? VISUAL_TASK_NAMES).map(checkTask))];
  const splits = (v.splits ?? 'heldout,compositional').split(',').map((s) => checkSplit(s.trim()));
  const n = num('n', v.n, 200, { min: 1, int: true });
  const model = loadMultimodal(v.model);
  const bar = new Progress({ label: 'eval vision', total: tasks.length * splits.length * n, unit: 'question' });
  const t0 = Date.now();
  const r = await evaluateVision(model, { tasks, n, splits, seed: num('seed', v.seed, 20261, { int: true }), batchSize: num('batch', v.batch, 64, { min: 1, int: true }), imagePlacement, onProgress: (d) => bar.update(d) });
  bar.done();
  console.log(formatVisionTable(r, tasks, splits));
  const out = v.out ?? join(v.model, 'eval-vision.json');
  writeJsonAtomic(out, { model: v.model, n, seed: num('seed', v.seed, 20261, { int: true }), seconds: (Date.now() - t0) / 1000, ...r });
  console.log(`wrote ${out}`);
  return 0;
}
