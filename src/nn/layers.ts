/**
 * Layers: thin, explicit wrappers over tensor ops that own their parameters.
 * Weight layouts follow PyTorch (Linear weight is (out, in)), so checkpoints map one to one.
 */
import { Tensor, Rng, currentBackend } from '../tensor/index.ts';
import * as ops from '../tensor/ops.ts';

/** A named trainable tensor plus how the optimizer should treat it. */
export interface Param {
  name: string;
  tensor: Tensor;
  /** Decayed by AdamW (matrices) or not (biases, norms, embeddings by default). */
  decay: boolean;
  /** Learning-rate multiplier (1 in standard parametrization; width-dependent under muP). */
  lrScale: number;
}

export function normalInit(shape: number[], std: number, rng: Rng): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal() * std;
  return d;
}

export function param(name: string, data: Float32Array, shape: number[]): Tensor {
  return Tensor.param(data, shape, name, currentBackend());
}

/** y = x Wᵀ + b, x (..., in) → (..., out). */
export class Linear {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(name: string, readonly inFeatures: number, readonly outFeatures: number,
              opts: { bias: boolean; std: number; rng: Rng }) {
    this.weight = param(`${name}.weight`, normalInit([outFeatures, inFeatures], opts.std, opts.rng), [outFeatures, inFeatures]);
    this.bias = opts.bias ? param(`${name}.bias`, new Float32Array(outFeatures), [outFeatures]) : null;
  }
  forward(x: Tensor): Tensor {
    const y = ops.matmul(x, this.weight, { transB: true });
    return this.bias ? ops.add(y, this.bias) : y;
  }
  params(decay = true, lrScale = 1): Param[] {
    const p: Param[] = [{ name: this.weight.name!, tensor: this.weight, decay, lrScale }];
    if (this.bias) p.push({ name: this.bias.name!, tensor: this.bias, decay: false, lrScale });
    return p;
  }
}

/** LayerNorm or RMSNorm over the last axis. */
export class Norm {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(name: string, dim: number, readonly kind: 'layernorm' | 'rmsnorm', bias: boolean, readonly eps: number) {
    this.weight = param(`${name}.weight`, new Float32Array(dim).fill(1), [dim]);
    this.bias = kind === 'layernorm' && bias ? param(`${name}.bias`, new Float32Array(dim), [dim]) : null;
  }
  forward(x: Tensor): Tensor {
    return this.kind === 'layernorm' ? ops.layerNorm(x, this.weight, this.bias, this.eps) : ops.rmsNorm(x, this.weight, this.eps);
  }
  params(): Param[] {
    const p: Param[] = [{ name: this.weight.name!, tensor: this.weight, decay: false, lrScale: 1 }];
    if (this.bias) p.push({ name: this.bias.name!, tensor: this.bias, decay: false, lrScale: 1 });
    return p;
  }
}
