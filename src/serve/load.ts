/**
 * Loading a served model from a directory. The model formats (GPT checkpoints, the multimodal
 * model) belong to src/models; this is the one place `lumen serve` asks for an `InferenceModel`.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { InputError } from '../util/errors.ts';
import { loadModel, readModelConfig } from '../train/checkpoint.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { GPTInferenceModel } from './gpt-model.ts';
import { loadMultimodal } from '../models/multimodal.ts';
import type { InferenceModel } from './model.ts';

/** Loads the model in `dir` for serving: a text GPT, or a multimodal model when config.json has a `vision` section. */
export async function loadInferenceModel(dir: string): Promise<InferenceModel> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`no model at ${dir}: not a directory`);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
    if (!existsSync(join(dir, f))) throw new InputError(`no model at ${dir}: ${f} is missing`);
  }
  const cfg = readModelConfig(dir);
  const name = basename(resolve(dir));
  if (cfg.vision) return loadMultimodal(dir);
  return new GPTInferenceModel(loadModel(dir), Tokenizer.load(dir), name);
}
