/**
 * The machine's measured matmul peak (FLOP/s) on the current backend: the denominator of MFU.
 * Best of a few square GEMMs after a warm-up; measured once per process.
 */
import { currentBackend } from '../tensor/index.ts';

let cached: { backend: string; flops: number } | null = null;

export function measurePeakFlops(): number {
  const be = currentBackend();
  if (cached && cached.backend === be.describe()) return cached.flops;
  const n = be.name === 'reference' ? 128 : 1024;
  const a = be.alloc('float32', n * n), b = be.alloc('float32', n * n), c = be.alloc('float32', n * n);
  be.fill(a, 0.5); be.fill(b, 0.25);
  const run = () => be.matmul({ a, b, out: c, strideA: 0, strideB: 0, strideOut: 0, batch: 1, m: n, n, k: n, transA: false, transB: false });
  run();
  let best = Infinity;
  for (let i = 0; i < 4; i++) {
    const t0 = process.hrtime.bigint();
    run();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const flops = (2 * n * n * n) / best;
  cached = { backend: be.describe(), flops };
  return flops;
}
