/**
 * The one rule by which model shape scales with width, shared by sweep plans and the learning-
 * rate transfer check:
 *
 *   width ∈ WIDTH_LADDER (8, then multiples of 16, steps of ×1.33–×2),
 *   heads  = max(1, width / 16)    (head size 16 — 8 for the width-8 model — so attention cost per head stays constant),
 *   layers = max(1, round(width / 32))   (aspect ratio width/depth ≈ 32, so N ∝ width³),
 *   kvHeads = heads, everything else (MLP ratio, norm, positions, parametrization…) from the base.
 *
 * Keeping aspect ratio and head size fixed is what Kaplan et al. found costs almost nothing
 * across a wide range, and it makes the family a one-parameter ladder, so "model size" means one
 * thing in every fit.
 */
import { flopsPerToken, paramCount, parseGPTConfig, MODEL_PRESETS, type GPTConfig } from '../models/config.ts';
import { InputError } from '../util/errors.ts';

/** Widths the planner may use, smallest first. */
export const WIDTH_LADDER = [8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024] as const;

/** Head size of every planned model. */
export const HEAD_DIM = 16;

/** Fields of GPTConfig that the shape rule does not set. */
export type BaseConfig = Omit<GPTConfig, 'layers' | 'width' | 'heads' | 'kvHeads'>;

/** Default base: the `tiny` preset's vocabulary, context and recipe, with maximal-update parametrization so the LR transfers across widths. */
export function defaultBase(overrides: Partial<BaseConfig> = {}): BaseConfig {
  const { layers: _l, width: _w, heads: _h, kvHeads: _k, ...rest } = MODEL_PRESETS['tiny']!;
  return { ...rest, parametrization: 'mup', baseWidth: 32, ...overrides };
}

/** Layers for a width under the shape rule. */
export function layersFor(width: number): number {
  return Math.max(1, Math.round(width / 32));
}

/** The full, validated config for `width` (and optionally a fixed depth). */
export function shapeConfig(base: BaseConfig, width: number, layers = layersFor(width)): GPTConfig {
  if (!Number.isInteger(width) || width <= 0 || (width > HEAD_DIM && width % HEAD_DIM !== 0) || width % 2 !== 0)
    throw new InputError(`width must be an even number up to ${HEAD_DIM} or a positive multiple of ${HEAD_DIM}, got ${width}`);
  const heads = Math.max(1, width / HEAD_DIM);
  return parseGPTConfig({ ...base, width, layers, heads, kvHeads: heads }, `model of width ${width}`);
}

/** The counts a plan needs for one shape: non-embedding N, total parameters, training FLOPs per token. */
export function shapeCounts(cfg: GPTConfig): { params: number; paramsTotal: number; flopsPerToken: number } {
  return { params: paramCount(cfg, { embeddings: false }), paramsTotal: paramCount(cfg), flopsPerToken: flopsPerToken(cfg) };
}
