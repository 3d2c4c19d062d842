/** `lumen dpo`: direct preference optimisation against a frozen reference. */
import { parse, num } from '../args.ts';
import { trainDpo } from '../../align/dpo.ts';
import { preferencesFrom } from '../../align/train-utils.ts';
import { InputError } from '../../util/errors.ts';

const OPTIONS = {
  model: { type: 'string', help: 'policy to start from (usually the SFT model); also the frozen reference' },
  data: { type: 'string', help: 'preference pairs JSONL ({"prompt","chosen","rejected"} per line)' },
  generate: { type: 'boolean', help: 'train on the pairs generated from the written policy instead of --data' },
  policy: { type: 'string', help: 'policy YAML for --generate (default: data/policy/default.yaml)' },
  beta: { type: 'string', help: 'β: strength of the pull towards the reference', default: '0.1' },
  'sft-coef': { type: 'string', help: 'weight of an added per-token NLL of the chosen responses (0 = plain DPO)', default: '0' },
  out: { type: 'string', help: 'output model directory (also metrics.jsonl, dpo-metrics.json)', default: 'runs/dpo' },
  steps: { type: 'string', help: 'optimizer steps', default: '120' },
  batch: { type: 'string', help: 'preference pairs per step', default: '16' },
  lr: { type: 'string', help: 'peak learning rate (warmup, then cosine to a tenth)', default: '3e-5' },
  'val-fraction': { type: 'string', help: 'pairs held out for accuracy', default: '0.1' },
  seed: { type: 'string', help: 'seed (data order, hold-out, generated data)', default: '1' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const p = parse('dpo', '--model DIR (--data prefs.jsonl | --generate) [--beta 0.1] [--out DIR] [options]', OPTIONS, argv,
    'Direct preference optimisation: L = −log σ(β·[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))]) with the\n'
    + 'starting model as the frozen reference. Reports held-out preference accuracy of the implicit reward.');
  if (!p) return 0;
  const v = p.values;
  if (!v.model) throw new InputError('--model DIR is required');
  const seed = num('seed', v.seed, 1, { int: true });
  const pairs = preferencesFrom(v.data, v.generate, v.policy, seed);
  const r = await trainDpo({
    modelDir: v.model, outDir: v.out!, pairs, seed, beta: num('beta', v.beta, 0.1, { min: 1e-6 }), sftCoef: num('sft-coef', v['sft-coef'], 0, { min: 0 }),
    steps: num('steps', v.steps, 120, { int: true, min: 1 }), batchSize: num('batch', v.batch, 16, { int: true, min: 1 }),
    lr: num('lr', v.lr, 3e-5, { min: 0 }), valFraction: num('val-fraction', v['val-fraction'], 0.1, { min: 0, max: 0.5 }),
  });
  console.log(`dpo: ${r.steps} steps in ${r.seconds.toFixed(0)} s; train loss ${r.trainLoss.toFixed(3)}; held-out preference accuracy ${(r.heldOutAccuracy * 100).toFixed(1)}% on ${r.heldOutPairs} pairs → ${v.out}`);
  return 0;
}
