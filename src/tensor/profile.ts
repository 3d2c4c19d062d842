/**
 * A profiling wrapper around any backend: counts calls and wall time per kernel. Enabled with
 * LUMEN_PROFILE=1 (device.ts wraps the chosen backend); `profileReport()` prints the table,
 * and a process exit prints it too. It shows what runs and what it costs.
 */
import type { Backend } from './backend.ts';

interface Entry { calls: number; ms: number; flops: number }
const table = new Map<string, Entry>();
/** LUMEN_PROFILE=shapes also splits matmul by shape, with its GFLOP/s */
const byShape = process.env.LUMEN_PROFILE === 'shapes';

function record(name: string, ms: number, flops: number): void {
  const e = table.get(name) ?? { calls: 0, ms: 0, flops: 0 };
  e.calls++; e.ms += ms; e.flops += flops;
  table.set(name, e);
}

export function profiled(inner: Backend): Backend {
  const wrapper = Object.create(inner) as Backend;
  const proto = Object.getPrototypeOf(inner) as Record<string, unknown>;
  for (const key of Object.getOwnPropertyNames(proto)) {
    const fn = (inner as unknown as Record<string, unknown>)[key];
    if (key === 'constructor' || typeof fn !== 'function') continue;
    (wrapper as unknown as Record<string, unknown>)[key] = (...args: unknown[]) => {
      const t0 = performance.now();
      const r = (fn as (...a: unknown[]) => unknown).apply(inner, args);
      const ms = performance.now() - t0;
      const name = key === 'unary' || key === 'binary' || key === 'scalar' || key === 'unaryBackward' ? `${key}:${String(args[0])}` : key;
      record(name, ms, 0);
      if (key === 'matmul' && byShape) {
        const a = args[0] as { batch: number; m: number; n: number; k: number; transA: boolean; transB: boolean };
        record(`  ${a.batch > 1 ? `${a.batch}×` : ''}${a.m}x${a.n}x${a.k}${a.transA ? ' Aᵀ' : ''}${a.transB ? ' Bᵀ' : ''}`, ms, 2 * a.batch * a.m * a.n * a.k);
      }
      return r;
    };
  }
  process.once('exit', () => { if (table.size) console.error(profileReport()); });
  return wrapper;
}

export function profileReport(): string {
  const all = [...table.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const rows = all.filter(([k]) => !k.startsWith('  '));
  const shapes = all.filter(([k]) => k.startsWith('  ')).slice(0, 20);
  const total = rows.reduce((s, [, e]) => s + e.ms, 0);
  const lines = ['kernel                          calls        ms      %'];
  const line = (k: string, e: Entry) => `${k.padEnd(30)} ${String(e.calls).padStart(7)} ${e.ms.toFixed(1).padStart(9)} ${((100 * e.ms) / total).toFixed(1).padStart(6)}` +
    (e.flops ? `  ${(e.flops / e.ms / 1e6).toFixed(1)} GFLOP/s` : '');
  for (const [k, e] of rows) {
    lines.push(line(k, e));
    if (k === 'matmul') for (const [sk, se] of shapes) lines.push(line(sk, se));
  }
  lines.push(`${'total'.padEnd(30)} ${''.padStart(7)} ${total.toFixed(1).padStart(9)}`);
  return lines.join('\n');
}
