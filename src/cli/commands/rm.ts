/** `lumen rm`: train a reward model (scalar head, Bradley–Terry loss) on preference pairs. */
import { parse, num } from '../args.ts';
import { trainRewardModel } from '../../align/reward-model.ts';
import { preferencesFrom } from '../../align/train-utils.ts';
import { InputError } from '../../util/errors.ts';

const OPTIONS = {
  model: { type: 'string', help: 'language model directory to start from (usually the SFT model)' },
  data: { type: 'string', help: 'preference pairs JSONL ({"prompt","chosen","rejected"} per line)' },
  generate: { type: 'boolean', help: 'train on the pairs generated from the written policy instead of --data' },
  policy: { type: 'string', help: 'policy YAML for --generate (default: data/policy/default.yaml)' },
  out: { type: 'string', help: 'output directory (model with reward_head.*, metrics.jsonl, rm-metrics.json)', default: 'runs/rm' },
  steps: { type: 'string', help: 'optimizer steps', default: '150' },
  batch: { type: 'string', help: 'preference pairs per step', default: '16' },
  lr: { type: 'string', help: 'peak learning rate (warmup, then cosine to a tenth)', default: '3e-4' },
  'val-fraction': { type: 'string', help: 'pairs held out for accuracy', default: '0.1' },
  seed: { type: 'string', help: 'seed (data order, hold-out, head init, generated data)', default: '1' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const p = parse('rm', '--model DIR (--data prefs.jsonl | --generate) [--out DIR] [options]', OPTIONS, argv,
    'Trains a reward model: a Linear C→1 head on the final hidden state of the last token, Bradley–Terry loss\n'
    + '−log σ(r_chosen − r_rejected). Reports accuracy on held-out pairs (also in DIR/rm-metrics.json). The head is saved\n'
    + 'as reward_head.weight / reward_head.bias in DIR/model.safetensors.');
  if (!p) return 0;
  const v = p.values;
  if (!v.model) throw new InputError('--model DIR is required');
  const seed = num('seed', v.seed, 1, { int: true });
  const pairs = preferencesFrom(v.data, v.generate, v.policy, seed);
  const r = await trainRewardModel({
    modelDir: v.model, outDir: v.out!, pairs, seed,
    steps: num('steps', v.steps, 150, { int: true, min: 1 }), batchSize: num('batch', v.batch, 16, { int: true, min: 1 }),
    lr: num('lr', v.lr, 3e-4, { min: 0 }), valFraction: num('val-fraction', v['val-fraction'], 0.1, { min: 0, max: 0.5 }),
  });
  console.log(`rm: ${r.steps} steps in ${r.seconds.toFixed(0)} s; train loss ${r.trainLoss.toFixed(3)}; held-out accuracy ${(r.heldOutAccuracy * 100).toFixed(1)}% on ${r.heldOutPairs} pairs (loss ${r.heldOutLoss.toFixed(3)})${r.skipped ? `; ${r.skipped} pairs skipped` : ''} → ${v.out}`);
  for (const [t, a] of Object.entries(r.accuracyByType)) console.log(`  ${t.padEnd(20)} ${(a.accuracy * 100).toFixed(1)}% of ${a.n}`);
  return 0;
}
