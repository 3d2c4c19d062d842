/**
 * An exponential moving average of a model's weights (Polyak averaging):
 * after each `update()`, avg ← decay·avg + (1 − decay)·w. The average starts at the weights
 * it is created from. `swapIn()` puts the averaged weights into the model (keeping the live
 * ones aside) and `swapOut()` restores the live weights, so training continues untouched while
 * the average is evaluated or saved. All work stays on the tensors' backend.
 */
import { Tensor } from '../tensor/index.ts';
import type { Param } from '../nn/layers.ts';
import { InputError } from '../util/errors.ts';

export class WeightAverage {
  private readonly avg: Tensor[];
  private readonly aside: Tensor[];
  private swapped = false;

  constructor(private readonly params: readonly Param[], readonly decay: number) {
    if (!(decay >= 0 && decay < 1)) throw new InputError(`weight average: decay must be in [0, 1), got ${decay}`);
    this.avg = params.map((p) => copyOf(p.tensor));
    this.aside = params.map((p) => Tensor.zeros(p.tensor.shape, 'float32', p.tensor.backend));
  }

  /** Folds the current weights into the average. */
  update(): void {
    if (this.swapped) throw new Error('weight average: update() while the average is swapped in');
    this.params.forEach((p, i) => {
      const b = p.tensor.backend, a = this.avg[i]!;
      b.scalar('mul', a.buf, this.decay, a.buf, a.size, false);
      b.axpy(1 - this.decay, p.tensor.buf, a.buf, a.size);
    });
  }

  /** Puts the averaged weights into the model; the live ones are kept for `swapOut()`. */
  swapIn(): void {
    if (this.swapped) return;
    this.params.forEach((p, i) => { copy(p.tensor, this.aside[i]!); copy(this.avg[i]!, p.tensor); });
    this.swapped = true;
  }

  /** Restores the live weights. */
  swapOut(): void {
    if (!this.swapped) return;
    this.params.forEach((p, i) => copy(this.aside[i]!, p.tensor));
    this.swapped = false;
  }

  /** Runs `fn` with the averaged weights in the model. */
  async with<T>(fn: () => T | Promise<T>): Promise<T> {
    this.swapIn();
    try { return await fn(); } finally { this.swapOut(); }
  }
}

function copy(src: Tensor, dst: Tensor): void {
  src.backend.stridedCopy(src.buf, 0, [1], dst.buf, 0, [1], [src.size], false);
}

function copyOf(t: Tensor): Tensor {
  const c = Tensor.zeros(t.shape, 'float32', t.backend);
  copy(t, c);
  return c;
}
