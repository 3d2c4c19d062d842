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
import type { InferenceModel } from './model.ts';

/** Loads the model in `dir` for serving: a text GPT, or a multimodal model when config.json has a `vision` section. */
export async function loadInferenceModel(dir: string): Promise<InferenceModel> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`no model at ${dir}: not a directory`);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
    if (!existsSync(join(dir, f))) throw new InputError(`no model at ${dir}: ${f} is missing`);
  }
  const cfg = readModelConfig(dir);
  const name = basename(resolve(dir));
  if (cfg.vision) {
    const file = '../models/multimodal.ts';
    const mm = (await import(file)) as { loadMultimodalInference?: (d: string, n: string) => Promise<InferenceModel> | InferenceModel };
    if (!mm.loadMultimodalInference) throw new InputError(`${dir}: multimodal models cannot be served by this build`);
    return mm.loadMultimodalInference(dir, name);
  }
  return new GPTInferenceModel(loadModel(dir), Tokenizer.load(dir), name);
}
