/**
 * Adapter from a local Lumen model directory (checkpoint + tokenizer) to `EvalModel`.
 * Not wired yet: the model and its inference engine land in other modules first.
 */
import { InputError } from '../util/errors.ts';
import type { EvalModel } from './model.ts';

/** Loads a local Lumen model for evaluation. */
export async function loadLocalEvalModel(dir: string): Promise<EvalModel> {
  throw new InputError(`--model ${dir}: local models are not wired yet; serve the model with 'lumen serve' and pass --endpoint instead`);
}
