/**
 * AdamW with decoupled weight decay on matrices only, per-parameter learning-rate scales
 * (muP), global gradient-norm clipping, and a warmup + cosine schedule. Its state (moments,
 * step) is saved with checkpoints for exact resume.
 */
import { Tensor, noGrad, currentBackend, type Backend } from '../tensor/index.ts';
import type { Param } from '../nn/layers.ts';

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient L2 norm to this (0 = off). */
  gradClip: number;
}

export class AdamW {
  readonly m: Tensor[];
  readonly v: Tensor[];
  step = 0;

  constructor(readonly params: Param[], public opts: AdamWOptions) {
    this.m = params.map((p) => Tensor.zeros(p.tensor.shape, 'float32', p.tensor.backend));
    this.v = params.map((p) => Tensor.zeros(p.tensor.shape, 'float32', p.tensor.backend));
  }

  /** The backend of the parameters (where a training step's buffers live). */
  get backend(): Backend { return this.params[0]?.tensor.backend ?? currentBackend(); }

  /** Global L2 norm of all gradients (missing gradients count as zero). */
  gradNorm(): number {
    let ss = 0;
    for (const p of this.params) if (p.tensor.grad) ss += p.tensor.backend.sumSquares(p.tensor.grad.buf, p.tensor.size);
    return Math.sqrt(ss);
  }

  /**
   * One update at learning rate `lr`. `gradScale` multiplies every gradient first (e.g. 1/accumSteps);
   * clipping then applies to the scaled norm. Returns the (scaled, pre-clip) gradient norm.
   */
  update(lr: number, gradScale = 1): number {
    const { beta1: b1, beta2: b2, eps, weightDecay, gradClip } = this.opts;
    const norm = this.gradNorm() * gradScale;
    const clip = gradClip > 0 && norm > gradClip ? gradClip / norm : 1;
    this.step++;
    const bc1 = 1 - Math.pow(b1, this.step), bc2 = 1 - Math.pow(b2, this.step);
    noGrad(() => {
      this.params.forEach((p, i) => {
        const g = p.tensor.grad;
        if (!g) return;
        p.tensor.backend.adamw(p.tensor.buf, g.buf, this.m[i]!.buf, this.v[i]!.buf, p.tensor.size, lr * p.lrScale,
          b1, b2, eps, p.decay ? weightDecay : 0, bc1, bc2, gradScale * clip);
      });
    });
    return norm;
  }

  zeroGrad(): void {
    for (const p of this.params) p.tensor.grad = null;
  }
}

export interface ScheduleOptions {
  lr: number;
  minLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/** Linear warmup to lr, then cosine decay to minLr at totalSteps (step is 0-based). */
export function learningRate(step: number, s: ScheduleOptions): number {
  if (s.warmupSteps > 0 && step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (step >= s.totalSteps) return s.minLr;
  const progress = (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps);
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}
