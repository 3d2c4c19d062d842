/**
 * GPT configuration: a validated schema, named presets, and the model's own counts of
 * parameters and training FLOPs per token (used by the trainer's MFU and by scaling plans).
 */
import { z } from 'zod';
import { InputError } from '../util/errors.ts';

export const GPTConfigSchema = z.object({
  vocabSize: z.number().int().min(2),
  contextLength: z.number().int().min(1),
  layers: z.number().int().min(1),
  width: z.number().int().min(1),
  heads: z.number().int().min(1),
  /** Key/value heads (grouped-query attention); equal to heads for standard multi-head attention. */
  kvHeads: z.number().int().min(1),
  /** MLP hidden size = mlpRatio × width (for SwiGLU too: three matrices of that size). */
  mlpRatio: z.number().positive(),
  activation: z.enum(['gelu', 'swiglu']),
  norm: z.enum(['layernorm', 'rmsnorm']),
  positions: z.enum(['learned', 'rope']),
  ropeBase: z.number().positive(),
  tiedEmbeddings: z.boolean(),
  dropout: z.number().min(0).lt(1),
  bias: z.boolean(),
  normEps: z.number().positive(),
  /** Std of the normal init of weight matrices (standard parametrization) at width `baseWidth`. */
  initStd: z.number().positive(),
  /** 'standard' (GPT-2 style) or 'mup' (maximal-update: init and per-layer LR scale with width / baseWidth). */
  parametrization: z.enum(['standard', 'mup']),
  baseWidth: z.number().int().positive(),
}).strict().superRefine((c, ctx) => {
  if (c.width % c.heads !== 0) ctx.addIssue({ code: 'custom', message: `width ${c.width} must be divisible by heads ${c.heads}` });
  if (c.heads % c.kvHeads !== 0) ctx.addIssue({ code: 'custom', message: `heads ${c.heads} must be a multiple of kvHeads ${c.kvHeads}` });
  if (c.positions === 'rope' && (c.width / c.heads) % 2 !== 0) ctx.addIssue({ code: 'custom', message: `rotary positions need an even head size, got ${c.width / c.heads}` });
});

export type GPTConfig = z.infer<typeof GPTConfigSchema>;

const DEFAULTS: Omit<GPTConfig, 'vocabSize' | 'contextLength' | 'layers' | 'width' | 'heads' | 'kvHeads'> = {
  mlpRatio: 4, activation: 'gelu', norm: 'layernorm', positions: 'learned', ropeBase: 10000,
  tiedEmbeddings: true, dropout: 0, bias: true, normEps: 1e-5, initStd: 0.02, parametrization: 'standard', baseWidth: 128,
};

/** Named model presets. `vocabSize` is replaced by the tokenizer's when training. */
export const MODEL_PRESETS: Record<string, GPTConfig> = {
  /** For tests: trains in seconds. */
  tiny: { ...DEFAULTS, vocabSize: 512, contextLength: 64, layers: 2, width: 64, heads: 4, kvHeads: 4 },
  /** The default: trains in under 10 minutes on 2 cores. */
  small: { ...DEFAULTS, vocabSize: 4096, contextLength: 128, layers: 4, width: 192, heads: 6, kvHeads: 6 },
  /** The `ref` benchmark shape: 6 layers, width 256, 8 heads, context 256. */
  base: { ...DEFAULTS, vocabSize: 4096, contextLength: 256, layers: 6, width: 256, heads: 8, kvHeads: 8 },
};

/** Validates a config object; errors name every bad field. */
export function parseGPTConfig(obj: unknown, source = 'config'): GPTConfig {
  const r = GPTConfigSchema.safeParse(obj);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new InputError(`${source}: invalid model config — ${msgs.join('; ')}`);
  }
  return r.data;
}

export function headDim(c: GPTConfig): number { return c.width / c.heads; }
export function mlpHidden(c: GPTConfig): number { return Math.round(c.mlpRatio * c.width); }

/** Parameters in the Transformer blocks' weight matrices (what scaling laws call N). */
function matrixParams(c: GPTConfig): number {
  const kv = c.kvHeads * headDim(c);
  const attn = c.width * c.width * 2 + c.width * kv * 2; // q, o, k, v
  const mlp = (c.activation === 'swiglu' ? 3 : 2) * c.width * mlpHidden(c);
  return c.layers * (attn + mlp);
}

/**
 * Parameter count. With `embeddings: false` it leaves out token/position embeddings and the
 * output head (the non-embedding N of Kaplan et al.), keeping norms and biases.
 */
export function paramCount(c: GPTConfig, opts: { embeddings?: boolean } = {}): number {
  const kv = c.kvHeads * headDim(c), H = mlpHidden(c);
  const normP = c.norm === 'layernorm' && c.bias ? 2 * c.width : c.width;
  let perLayer = 2 * normP;
  if (c.bias) perLayer += c.width * 2 + kv * 2 + (c.activation === 'swiglu' ? 2 * H : H) + c.width;
  let n = matrixParams(c) + c.layers * perLayer + normP;
  if (opts.embeddings ?? true) {
    n += c.vocabSize * c.width;
    if (c.positions === 'learned') n += c.contextLength * c.width;
    if (!c.tiedEmbeddings) n += c.vocabSize * c.width;
  }
  return n;
}

/**
 * Training FLOPs per token (forward + backward = 3 × forward): every weight matrix
 * (2 FLOPs per multiply-add), the output head, and attention's QKᵀ and AV products over the
 * full context (2 × 2 × layers × context × width forward), as in Kaplan et al. (2020).
 * Norms, activations and softmax are left out (a few percent).
 */
export function flopsPerToken(c: GPTConfig): number {
  const forward = 2 * matrixParams(c) + 2 * c.width * c.vocabSize + 4 * c.layers * c.contextLength * c.width;
  return 3 * forward;
}
