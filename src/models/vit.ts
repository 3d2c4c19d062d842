/**
 * The vision encoder (a ViT) and the projector that maps its outputs into the language model's
 * embedding space.
 *
 *   pixels (N, 3, S, S)
 *     → patches (N, M, 3·P·P)        reshape/permute, M = (S/P)², each patch flattened (channel, row, col)
 *                                    — the layout of F.unfold and of a Conv2d(3, W, P, stride P) weight
 *     → patch_norm LayerNorm(3·P·P)  per patch (as in Beyer et al.'s "simple ViT"): a flat patch of
 *                                    background becomes 0 and a small object on it a full-scale signal;
 *                                    this made learning several times faster on the synthetic tasks
 *                                    (config.patchNorm 'channel': each channel of the patch on its own)
 *     → patch_embed Linear + position embeddings (M, W)
 *       (+ patch_stats Linear(6, W) of the patch's per-channel min and max, when config.patchStats)
 *     → `layers` pre-norm blocks: x += attn(LN(x)) (bidirectional), x += fc2(GELU(fc1(LN(x))))
 *     → final LayerNorm                                     (N, M, W)
 *   projector: fc2(GELU(fc1(x)))                            (N, M, C)   C = the LM width
 *
 * Tensor names (stored next to the GPT's in model.safetensors):
 *   vision.patch_norm.{weight, bias} (3P²)         vision.patch_embed.{weight (W, 3P²), bias}     vision.position_embedding.weight (M, W)
 *   vision.layers.{i}.norm1.{weight,bias}          vision.layers.{i}.attn.{q,k,v,o}_proj.{weight,bias}
 *   vision.layers.{i}.norm2.{weight,bias}          vision.layers.{i}.mlp.fc{1,2}.{weight,bias}
 *   vision.patch_stats.weight (W, 6), with patchStats: inputs (min R, G, B, max R, G, B) of the normalised pixels
 *   vision.norm.{weight,bias}                      projector.fc1.{weight (C, W), bias}, projector.fc2.{weight (C, C), bias}
 * LayerNorm eps is 1e-5; GELU is the tanh approximation (as in the GPT).
 */
import { z } from 'zod';
import { Tensor, Rng } from '../tensor/index.ts';
import * as ops from '../tensor/ops.ts';
import { Linear, Norm, normalInit, param, type Param } from '../nn/layers.ts';
import { InputError, OpError } from '../util/errors.ts';

export const VisionConfigSchema = z.object({
  /** Input side in pixels (images are resized and padded to S×S by src/io/image.ts). */
  imageSize: z.number().int().min(1),
  /** Patch side P; S must be a multiple of P. */
  patchSize: z.number().int().min(1),
  width: z.number().int().min(1),
  layers: z.number().int().min(0),
  heads: z.number().int().min(1),
  /** MLP hidden size = mlpRatio × width. */
  mlpRatio: z.number().positive(),
  /**
   * Adds each patch's per-channel minimum and maximum (6 numbers, taken from the input pixels)
   * through a learned Linear(6, W) to its embedding (default false). See ViT.forward.
   */
  patchStats: z.boolean().optional(),
  /**
   * How the stem normalises each flattened patch before the patch embedding (default 'patch'):
   * 'patch', one LayerNorm over all 3·P² values; 'channel', each channel's P² values normalised on
   * their own (then the same learned per-value scale and shift). See ViT.normalisePatches.
   */
  patchNorm: z.enum(['patch', 'channel']).optional(),
}).strict().superRefine((c, ctx) => {
  if (c.imageSize % c.patchSize !== 0) ctx.addIssue({ code: 'custom', message: `imageSize ${c.imageSize} must be a multiple of patchSize ${c.patchSize}` });
  if (c.width % c.heads !== 0) ctx.addIssue({ code: 'custom', message: `width ${c.width} must be divisible by heads ${c.heads}` });
});

export type VisionConfig = z.infer<typeof VisionConfigSchema>;

/** Validates a vision config; errors name every bad field. */
export function parseVisionConfig(obj: unknown, source = 'config'): VisionConfig {
  const r = VisionConfigSchema.safeParse(obj);
  if (!r.success) {
    throw new InputError(`${source}: invalid vision config — ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  return r.data;
}

/** The config with its optional fields filled in (configs saved before a field existed mean its default). */
export function withVisionDefaults(v: VisionConfig): Required<VisionConfig> {
  return { ...v, patchStats: v.patchStats ?? false, patchNorm: v.patchNorm ?? 'patch' };
}

/** Positions one image occupies in the language model: (S/P)². */
export function imageTokenCount(v: VisionConfig): number {
  const g = v.imageSize / v.patchSize;
  return g * g;
}

/** Parameters of the encoder and projector (for a language model of width `lmWidth`). */
export function visionParamCount(v: VisionConfig, lmWidth: number): number {
  const W = v.width, H = Math.round(v.mlpRatio * W), pp = 3 * v.patchSize * v.patchSize;
  const block = 2 * 2 * W + 4 * (W * W + W) + (W * H + H) + (H * W + W);
  return 2 * pp + pp * W + W + (v.patchStats ? 6 * W : 0) + imageTokenCount(v) * W + v.layers * block + 2 * W + (W * lmWidth + lmWidth) + (lmWidth * lmWidth + lmWidth);
}

/**
 * Training FLOPs of the encoder + projector per image position (forward + backward = 3 × forward):
 * every matrix at 2 FLOPs per multiply-add plus attention's two products over the M patches.
 */
export function visionFlopsPerToken(v: VisionConfig, lmWidth: number): number {
  const W = v.width, H = Math.round(v.mlpRatio * W), M = imageTokenCount(v);
  const mats = (3 * v.patchSize * v.patchSize + (v.patchStats ? 6 : 0)) * W + v.layers * (4 * W * W + 2 * W * H) + W * lmWidth + lmWidth * lmWidth;
  return 3 * (2 * mats + 4 * v.layers * M * W);
}

interface VitBlock { norm1: Norm; q: Linear; k: Linear; v: Linear; o: Linear; norm2: Norm; fc1: Linear; fc2: Linear }

/** The ViT encoder: pixels (N, 3, S, S) → patch features (N, M, W). */
export class ViT {
  readonly patchNorm: Norm;
  readonly patchEmbed: Linear;
  readonly posEmbed: Tensor;
  readonly blocks: VitBlock[] = [];
  readonly norm: Norm;
  /** Linear(6, W) of the patch statistics (config.patchStats), else null. */
  readonly statsEmbed: Linear | null;
  readonly tokens: number;

  constructor(readonly config: VisionConfig, rng: Rng, std = 0.02) {
    const c = config, W = c.width, H = Math.round(c.mlpRatio * W);
    this.tokens = imageTokenCount(c);
    const resid = std / Math.sqrt(2 * Math.max(1, c.layers));
    this.patchNorm = new Norm('vision.patch_norm', 3 * c.patchSize * c.patchSize, 'layernorm', true, 1e-5);
    this.patchEmbed = new Linear('vision.patch_embed', 3 * c.patchSize * c.patchSize, W, { bias: true, std, rng });
    this.posEmbed = param('vision.position_embedding.weight', normalInit([this.tokens, W], std, rng), [this.tokens, W]);
    for (let i = 0; i < c.layers; i++) {
      const p = `vision.layers.${i}`;
      const lin = (name: string, inF: number, outF: number, s: number) => new Linear(`${p}.${name}`, inF, outF, { bias: true, std: s, rng });
      this.blocks.push({
        norm1: new Norm(`${p}.norm1`, W, 'layernorm', true, 1e-5),
        q: lin('attn.q_proj', W, W, std), k: lin('attn.k_proj', W, W, std), v: lin('attn.v_proj', W, W, std), o: lin('attn.o_proj', W, W, resid),
        norm2: new Norm(`${p}.norm2`, W, 'layernorm', true, 1e-5),
        fc1: lin('mlp.fc1', W, H, std), fc2: lin('mlp.fc2', H, W, resid),
      });
    }
    this.norm = new Norm('vision.norm', W, 'layernorm', true, 1e-5);
    // Created last, so the other weights are drawn as without it.
    this.statsEmbed = c.patchStats ? new Linear('vision.patch_stats', 6, W, { bias: false, std, rng }) : null;
  }

  /**
   * (N, 3, S, S) → (N, M, 6): each patch's minimum and maximum of each channel, in raster patch
   * order (min R, G, B, max R, G, B). A constant of the input (no gradient flows to pixels).
   * Unlike the patch-normalised pixels these do not depend on how much of the patch an object
   * covers: on a plain background the minimum of a channel is the object's own value whatever its
   * shape or size, so colour reaches the encoder separately from shape. Computed on the host.
   */
  patchStatistics(pixels: Tensor): Tensor {
    const { imageSize: S, patchSize: P } = this.config, G = S / P, N = pixels.shape[0]!;
    const px = pixels.toArray(), out = new Float32Array(N * G * G * 6);
    for (let n = 0; n < N; n++) for (let gy = 0; gy < G; gy++) for (let gx = 0; gx < G; gx++) {
      const o = ((n * G + gy) * G + gx) * 6;
      for (let ch = 0; ch < 3; ch++) {
        let lo = Infinity, hi = -Infinity;
        const base = (n * 3 + ch) * S * S;
        for (let y = gy * P; y < gy * P + P; y++) for (let x = gx * P; x < gx * P + P; x++) {
          const v = px[base + y * S + x]!;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        out[o + ch] = lo; out[o + 3 + ch] = hi;
      }
    }
    return Tensor.from(out, [N, G * G, 6], pixels.backend);
  }

  /** (N, 3, S, S) → (N, M, 3·P·P): non-overlapping patches in raster order, each (channel, row, col). */
  patchify(pixels: Tensor): Tensor {
    const { imageSize: S, patchSize: P } = this.config, G = S / P;
    if (pixels.ndim !== 4 || pixels.shape[1] !== 3 || pixels.shape[2] !== S || pixels.shape[3] !== S) {
      throw new OpError('vit', `pixels must be (N, 3, ${S}, ${S}), got [${pixels.shape.join(', ')}]`);
    }
    const N = pixels.shape[0]!;
    const x = ops.reshape(pixels, [N, 3, G, P, G, P]);          // (N, 3, gy, py, gx, px)
    const y = ops.permute(x, [0, 2, 4, 1, 3, 5]);                // (N, gy, gx, 3, py, px)
    return ops.reshape(y, [N, G * G, 3 * P * P]);
  }

  /**
   * The stem's normalisation of the patches (N, M, 3·P·P). 'patch' (config.patchNorm default):
   * a LayerNorm over each whole patch. 'channel': each channel of each patch normalised to zero
   * mean and unit variance on its own, then the learned scale and shift of `vision.patch_norm`
   * (3·P·P each, as with 'patch'). An object darker than its background in every channel then
   * gives the same input whatever its colour (each channel is the object's mask, rescaled), so
   * the pixel path carries its shape and not its colour; with config.patchStats the colour comes
   * in separately, through the patch's per-channel minimum and maximum.
   */
  normalisePatches(patches: Tensor): Tensor {
    if (withVisionDefaults(this.config).patchNorm === 'patch') return this.patchNorm.forward(patches);
    const [N, M, F] = patches.shape as [number, number, number], P2 = F / 3;
    const y = ops.reshape(ops.layerNorm(ops.reshape(patches, [N, M * 3, P2]), null, null, this.patchNorm.eps), [N, M, F]);
    return ops.add(ops.mul(y, this.patchNorm.weight), this.patchNorm.bias!);
  }

  /** Patch features (N, M, W). */
  forward(pixels: Tensor): Tensor {
    const c = this.config, W = c.width, D = W / c.heads;
    let x = ops.add(this.patchEmbed.forward(this.normalisePatches(this.patchify(pixels))), this.posEmbed); // (N, M, W)
    if (this.statsEmbed) x = ops.add(x, this.statsEmbed.forward(this.patchStatistics(pixels)));
    const N = x.shape[0]!, M = this.tokens;
    for (const b of this.blocks) {
      const h = b.norm1.forward(x);
      const q = ops.reshape(b.q.forward(h), [N, M, c.heads, D]);
      const k = ops.reshape(b.k.forward(h), [N, M, c.heads, D]);
      const v = ops.reshape(b.v.forward(h), [N, M, c.heads, D]);
      const a = ops.attention(q, k, v, { causal: false });        // (N, M, H, D), every patch sees every patch
      x = ops.add(x, b.o.forward(ops.reshape(a, [N, M, W])));
      x = ops.add(x, b.fc2.forward(ops.gelu(b.fc1.forward(b.norm2.forward(x)))));
    }
    return this.norm.forward(x);
  }

  params(): Param[] {
    const out: Param[] = [...this.patchNorm.params(), ...this.patchEmbed.params(), { name: this.posEmbed.name!, tensor: this.posEmbed, decay: false, lrScale: 1 }];
    for (const b of this.blocks) {
      out.push(...b.norm1.params(), ...b.q.params(), ...b.k.params(), ...b.v.params(), ...b.o.params(),
        ...b.norm2.params(), ...b.fc1.params(), ...b.fc2.params());
    }
    out.push(...this.norm.params());
    // Under Adam a weight moves about lr per step whatever its fan-in, so a layer's output moves in
    // proportion to its fan-in: the 6-input statistics embedding would change 3P²/6 times slower
    // than the patch embedding beside it (and in 15,000 steps of mm-small it barely learned). Its
    // learning rate is scaled by that ratio, and, like an embedding, it has no weight decay.
    if (this.statsEmbed) out.push(...this.statsEmbed.params(false, (3 * this.config.patchSize ** 2) / 6));
    return out;
  }
}

/** The projector: an MLP (Linear → GELU → Linear) from the encoder width to the LM width. */
export class Projector {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(visionWidth: number, lmWidth: number, rng: Rng, std = 0.02) {
    this.fc1 = new Linear('projector.fc1', visionWidth, lmWidth, { bias: true, std, rng });
    this.fc2 = new Linear('projector.fc2', lmWidth, lmWidth, { bias: true, std, rng });
  }
  /** (..., W) → (..., C). */
  forward(x: Tensor): Tensor {
    return this.fc2.forward(ops.gelu(this.fc1.forward(x)));
  }
  params(): Param[] {
    return [...this.fc1.params(), ...this.fc2.params()];
  }
}
