/**
 * Checkpoints. A model directory holds:
 *   config.json         { "model": GPTConfig, "train"?: TrainConfig, ... }
 *   model.safetensors   the weights, named as in src/models/gpt.ts
 *   tokenizer.json      the tokenizer (Hugging Face format)
 * and, for resuming training:
 *   state.safetensors   weights + AdamW moments + trainer state in one file, so a resume never
 *                       sees weights and moments from different steps.
 * Every file is written atomically (temporary file, fsync, rename); `kill -9` at any moment leaves
 * the previous good files loadable.
 */
import { existsSync, readFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../tensor/index.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../io/safetensors.ts';
import { GPT } from '../models/gpt.ts';
import { parseGPTConfig, type GPTConfig } from '../models/config.ts';
import { writeJsonAtomic, writeFileAtomic } from '../util/fs.ts';
import { InputError } from '../util/errors.ts';
import { canonicalJson } from '../util/json.ts';
import type { AdamW } from './optimizer.ts';

function hostF32(t: Tensor): Float32Array {
  const a = t.toArray();
  if (!(a instanceof Float32Array)) throw new InputError(`tensor ${t.name ?? ''} is ${t.dtype}, checkpoints hold float32`);
  return a;
}

/** Copies stored values into the model's tensors (names and shapes must match exactly). */
export function loadWeightsInto(named: Map<string, Tensor>, file: Map<string, { shape: number[]; data: ArrayLike<number> }>, source: string, prefix = ''): void {
  for (const [name, t] of named) {
    const s = file.get(prefix + name);
    if (!s) throw new InputError(`${source}: missing tensor '${prefix + name}'`);
    if (s.shape.length !== t.shape.length || s.shape.some((d, i) => d !== t.shape[i])) {
      throw new InputError(`${source}: tensor '${prefix + name}' has shape [${s.shape.join(', ')}], the model expects [${t.shape.join(', ')}]`);
    }
    const dst = t.backend.toHost(t.buf);
    if (s.data.length !== dst.length) throw new InputError(`${source}: tensor '${prefix + name}' has ${s.data.length} values, expected ${dst.length}`);
    dst.set(s.data as Float32Array);
  }
}

export interface ModelDirConfig {
  model: GPTConfig;
  [k: string]: unknown;
}

/** Writes config.json, model.safetensors and (when given) tokenizer.json into dir. */
export function saveModel(dir: string, model: GPT, extra: Record<string, unknown> = {}, tokenizerJson?: string): void {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, t] of model.namedTensors()) tensors[name] = { shape: t.shape, data: hostF32(t) };
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt', producer: 'lumen' });
  writeModelConfig(dir, model.config, extra);
  if (tokenizerJson) {
    const dst = join(dir, 'tokenizer.json');
    if (tokenizerJson !== dst) writeFileAtomic(dst, readFileSync(tokenizerJson));
  }
}

/** Writes (or rewrites, leaving the weights alone) a model directory's config.json. */
export function writeModelConfig(dir: string, config: GPTConfig, extra: Record<string, unknown> = {}): void {
  writeJsonAtomic(join(dir, 'config.json'), { ...extra, model: config });
}

export function readModelConfig(dir: string): ModelDirConfig {
  const p = join(dir, 'config.json');
  if (!existsSync(p)) throw new InputError(`${dir} is not a Lumen model directory (no config.json)`);
  let raw: { model?: unknown };
  try { raw = JSON.parse(readFileSync(p, 'utf8')); } catch (e) { throw new InputError(`${p}: not valid JSON (${(e as Error).message})`); }
  return { ...raw, model: parseGPTConfig(raw.model, p) };
}

/** Loads a GPT (config + weights) from a model directory. */
export function loadModel(dir: string): GPT {
  const cfg = readModelConfig(dir);
  const model = new GPT(cfg.model, 0);
  const p = join(dir, 'model.safetensors');
  if (!existsSync(p)) throw new InputError(`${dir}: no model.safetensors`);
  loadWeightsInto(model.namedTensors(), readSafetensors(p).tensors, p);
  return model;
}

export interface TrainerState {
  step: number;
  tokens: number;
  dataRng: number[];
  [k: string]: unknown;
}

/** Writes weights, AdamW moments and trainer state into one file, atomically. */
export function saveState(dir: string, model: GPT, opt: AdamW, state: TrainerState): void {
  const tensors: Record<string, TensorToWrite> = {};
  const named = [...model.namedTensors()];
  named.forEach(([name, t]) => { tensors[`model.${name}`] = { shape: t.shape, data: hostF32(t) }; });
  opt.params.forEach((p, i) => {
    tensors[`adam_m.${p.name}`] = { shape: p.tensor.shape, data: hostF32(opt.m[i]!) };
    tensors[`adam_v.${p.name}`] = { shape: p.tensor.shape, data: hostF32(opt.v[i]!) };
  });
  writeSafetensors(join(dir, 'state.safetensors'), tensors, { state: JSON.stringify({ ...state, optStep: opt.step }) });
}

/** Restores weights, moments and returns the trainer state, or null when dir has no state file. */
export function loadState(dir: string, model: GPT, opt: AdamW): TrainerState | null {
  const p = join(dir, 'state.safetensors');
  if (!existsSync(p)) return null;
  const f = readSafetensors(p);
  loadWeightsInto(model.namedTensors(), f.tensors, p, 'model.');
  const byName = (ts: Tensor[]) => new Map(opt.params.map((q, i) => [q.name, ts[i]!]));
  loadWeightsInto(byName(opt.m), f.tensors, p, 'adam_m.');
  loadWeightsInto(byName(opt.v), f.tensors, p, 'adam_v.');
  let st: TrainerState & { optStep: number };
  try { st = JSON.parse(f.metadata.state ?? ''); } catch { throw new InputError(`${p}: missing or invalid trainer state metadata`); }
  opt.step = st.optStep;
  return st;
}

/** Copies a file next to a checkpoint if it is not already there. */
export function copyInto(src: string, dir: string, name: string): void {
  const dst = join(dir, name);
  if (src !== dst) copyFileSync(src, dst);
}

/** Keys of a training recipe that a resume may change: the length and the logging, evaluation and checkpoint cadence. */
export const RESUMABLE_KEYS = ['steps', 'logEvery', 'evalEvery', 'evalBatches', 'evalSamples', 'checkpointEvery'] as const;

/**
 * A resume continues the recipe its run was started with: compares the `train` record of
 * DIR/config.json with this invocation's recipe and throws an InputError naming every key that
 * differs (other than RESUMABLE_KEYS). Keys the saved record lacks (added by a later Lumen)
 * are not compared. Without a saved state or record there is nothing to compare.
 */
export function checkResumeRecipe(dir: string, train: Record<string, unknown>): void {
  const p = join(dir, 'config.json');
  if (!existsSync(join(dir, 'state.safetensors')) || !existsSync(p)) return; // nothing to resume
  let saved: unknown;
  try { saved = (JSON.parse(readFileSync(p, 'utf8')) as { train?: unknown }).train; } catch (e) { throw new InputError(`${p}: not valid JSON (${(e as Error).message})`); }
  if (!saved || typeof saved !== 'object') return;
  const now = JSON.parse(JSON.stringify(train)) as Record<string, unknown>;
  const differ = Object.keys(saved).filter((k) => !(RESUMABLE_KEYS as readonly string[]).includes(k) && k in now && canonicalJson((saved as Record<string, unknown>)[k]) !== canonicalJson(now[k]));
  if (differ.length) {
    const show = (v: unknown) => { const s = canonicalJson(v); return s.length > 60 ? s.slice(0, 57) + '...' : s; };
    const list = differ.map((k) => `${k} (saved ${show((saved as Record<string, unknown>)[k])}, now ${show(now[k])})`).join('; ');
    throw new InputError(`cannot resume ${dir}: it was trained with another recipe: ${list}. Rerun with the saved settings, or train into a new directory`);
  }
}
