/**
 * `lumen train`: pretrain a GPT from a preset or config file. With no data options it builds
 * everything from the embedded default corpus (tokenizer, shards), trains, and prints a sample.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from '../args.ts';
import { TRAIN_PRESETS, resolveTrainConfig, train, backendLine } from '../../train/trainer.ts';
import { ensureData, tokenizerVocab } from '../../train/pipeline.ts';
import { readManifest } from '../../data/shards.ts';
import { generateText } from './sample.ts';
import { InputError } from '../../util/errors.ts';
import { paramCount, flopsPerToken } from '../../models/config.ts';

const OPTIONS = {
  config: { type: 'string', help: `preset (${Object.keys(TRAIN_PRESETS).join(', ')}, mm-small, mm-tiny) or JSON file`, default: 'small' },
  out: { type: 'string', help: 'run directory (checkpoints, metrics.jsonl); default runs/<preset>' },
  data: { type: 'string', help: 'token shards from `lumen data prepare` (else built from --input)' },
  input: { type: 'string', multiple: true, help: 'text files/globs to train on (default: the embedded corpus)' },
  tokenizer: { type: 'string', help: 'tokenizer directory to use when building shards (default: train one)' },
  resume: { type: 'boolean', help: 'continue exactly from the last checkpoint in --out' },
  set: { type: 'string', multiple: true, help: 'override a config value, e.g. --set steps=100 --set model.layers=2' },
  'no-sample': { type: 'boolean', help: 'do not print a sample at the end' },
} as const;

function isMultimodal(name: string): boolean {
  if (name.startsWith('mm-')) return true;
  if (!name.endsWith('.json') || !existsSync(name)) return false;
  try { return Boolean((JSON.parse(readFileSync(name, 'utf8')) as { vision?: unknown }).vision); } catch { return false; }
}

export async function run(argv: string[]): Promise<number> {
  const p = parse('train', '[--config small] [--out DIR] [--resume] [--set key=value ...]', OPTIONS, argv,
    'Pretrains a GPT. Without --data, trains a tokenizer and tokenizes the corpus first (cached under runs/data/).');
  if (!p) return 0;
  const v = p.values;
  const name = v.config ?? 'small';
  if (isMultimodal(name)) {
    // Vision-language presets (mm-*) and configs with a `vision` section train with src/train/multimodal.ts.
    const mm = await import('../../train/multimodal.ts');
    return mm.trainMultimodalMain({ config: name, sets: v.set ?? [], out: v.out, resume: v.resume });
  }
  const outDir = v.out ?? join('runs', TRAIN_PRESETS[name] ? name : 'custom');
  // Vocabulary: from the shards when given, else the preset's/file's model vocabulary.
  const wantVocab = resolveTrainConfig(name, v.set ?? []).model.vocabSize;
  let dataDir: string, tokenizerJson: string, vocab: number;
  if (v.data) {
    readManifest(v.data);
    dataDir = v.data; vocab = tokenizerVocab(v.data);
    tokenizerJson = join(v.data, 'tokenizer.json');
    if (!existsSync(tokenizerJson)) throw new InputError(`${v.data} has no tokenizer.json (run lumen data prepare with --out there)`);
  } else {
    const plan = await ensureData({ inputs: v.input, tokenizerDir: v.tokenizer, vocabSize: wantVocab });
    dataDir = plan.dataDir; tokenizerJson = plan.tokenizerJson; vocab = plan.vocabSize;
  }
  const cfg = resolveTrainConfig(name, v.set ?? [], vocab);
  const mc = cfg.model;
  console.error(`lumen: ${backendLine()}`);
  console.error(`lumen: model ${TRAIN_PRESETS[name]?.model ?? name} — ${(paramCount(mc) / 1e6).toFixed(2)}M parameters, ${mc.layers} layers × ${mc.width} wide, context ${mc.contextLength}, ` +
    `${(flopsPerToken(mc) / 1e6).toFixed(1)} MFLOP/token; ${cfg.steps} steps × ${cfg.batchSize * cfg.gradAccum * mc.contextLength} tokens; data ${dataDir}`);
  const r = await train({ config: cfg, dataDir, outDir, tokenizerJson, resume: v.resume });
  const last = r.last;
  if (last) console.log(`done: step ${last.step}, loss ${last.loss.toFixed(3)}${r.valLoss !== null ? `, val_loss ${r.valLoss.toFixed(3)}` : ''}, ${last.tokens_per_s} tokens/s, MFU ${(last.mfu * 100).toFixed(1)}% — checkpoint in ${outDir}`);
  if (!v['no-sample']) {
    console.log('--- sample (temperature 0.8) ---');
    const prompt = 'The ';
    process.stdout.write(prompt);
    generateText({ modelDir: outDir, prompt, maxTokens: 120, temperature: 0.8, topK: 40, topP: 0.95, seed: 1, stop: [], write: (s) => process.stdout.write(s) });
    process.stdout.write('\n');
  }
  return 0;
}
