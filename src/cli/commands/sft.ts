/** `lumen sft`: chat supervised fine-tuning with packing (loss on assistant tokens only). */
import { parse, num } from '../args.ts';
import { trainSft } from '../../align/sft.ts';
import { conversationsFrom } from '../../align/train-utils.ts';
import { InputError } from '../../util/errors.ts';

const OPTIONS = {
  model: { type: 'string', help: 'model directory to fine-tune (config.json, model.safetensors, tokenizer.json)' },
  data: { type: 'string', help: 'conversations JSONL ({"messages":[{"role","content"}]} per line)' },
  generate: { type: 'boolean', help: 'train on the conversations generated from the written policy instead of --data' },
  policy: { type: 'string', help: 'policy YAML for --generate (default: data/policy/default.yaml)' },
  out: { type: 'string', help: 'output model directory', default: 'runs/sft' },
  steps: { type: 'string', help: 'optimizer steps', default: '400' },
  batch: { type: 'string', help: 'packed context rows per step', default: '8' },
  lr: { type: 'string', help: 'peak learning rate (warmup, then cosine to a tenth)', default: '5e-4' },
  warmup: { type: 'string', help: 'warmup steps', default: '10' },
  'val-fraction': { type: 'string', help: 'conversations held out for validation loss', default: '0.05' },
  seed: { type: 'string', help: 'seed (data order, hold-out, generated data)', default: '1' },
  resume: { type: 'boolean', help: 'continue exactly from the last state in --out' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const p = parse('sft', '--model DIR (--data FILE.jsonl | --generate) [--out DIR] [options]', OPTIONS, argv,
    'Fine-tunes a GPT on chat conversations in the shared chat template. Several conversations are packed per context row\n'
    + 'with a block-diagonal attention mask and positions restarting per conversation; only assistant tokens are learned.\n'
    + 'Writes the model, metrics.jsonl and sft-summary.json to --out.');
  if (!p) return 0;
  const v = p.values;
  if (!v.model) throw new InputError('--model DIR is required');
  const seed = num('seed', v.seed, 1, { int: true });
  const conversations = conversationsFrom(v.data, v.generate, v.policy, seed);
  const r = await trainSft({
    modelDir: v.model, outDir: v.out!, conversations, seed, resume: v.resume,
    steps: num('steps', v.steps, 400, { int: true, min: 1 }), batchSize: num('batch', v.batch, 8, { int: true, min: 1 }),
    lr: num('lr', v.lr, 5e-4, { min: 0 }), warmupSteps: num('warmup', v.warmup, 10, { int: true, min: 0 }),
    valFraction: num('val-fraction', v['val-fraction'], 0.05, { min: 0, max: 0.5 }),
  });
  console.log(`sft: ${r.steps} steps on ${r.conversations} conversations (${r.rowsPerEpoch} packed rows per epoch${r.truncated ? `, ${r.truncated} cut to the context` : ''}${r.skippedImages ? `, ${r.skippedImages} with images skipped` : ''}) in ${r.seconds.toFixed(0)} s; `
    + `train loss ${r.trainLoss.toFixed(3)}${r.valLoss !== null ? `, held-out loss ${r.valLoss.toFixed(3)}` : ''} → ${v.out}`);
  return 0;
}
