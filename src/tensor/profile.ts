/**
 * A profiling wrapper around any backend: counts calls and wall time per kernel. Enabled with
 * LUMEN_PROFILE=1 (device.ts wraps the chosen backend); `profileReport()` prints the table,
 * and a process exit prints it too. It shows what runs and what it costs.
 */
import type { Backend } from './backend.ts';

interface Entry { calls: number; ms: number }
const table = new Map<string, Entry>();

export function profiled(inner: Backend): Backend {
  const wrapper = Object.create(inner) as Backend;
  const proto = Object.getPrototypeOf(inner) as Record<string, unknown>;
  for (const key of Object.getOwnPropertyNames(proto)) {
    const fn = (inner as unknown as Record<string, unknown>)[key];
    if (key === 'constructor' || typeof fn !== 'function') continue;
    (wrapper as unknown as Record<string, unknown>)[key] = (...args: unknown[]) => {
      const t0 = performance.now();
      const r = (fn as (...a: unknown[]) => unknown).apply(inner, args);
      const name = key === 'unary' || key === 'binary' || key === 'scalar' || key === 'unaryBackward' ? `${key}:${String(args[0])}` : key;
      const e = table.get(name) ?? { calls: 0, ms: 0 };
      e.calls++; e.ms += performance.now() - t0;
      table.set(name, e);
      return r;
    };
  }
  process.once('exit', () => { if (table.size) console.error(profileReport()); });
  return wrapper;
}

export function profileReport(): string {
  const rows = [...table.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((s, [, e]) => s + e.ms, 0);
  const lines = ['kernel                          calls        ms      %'];
  for (const [k, e] of rows) lines.push(`${k.padEnd(30)} ${String(e.calls).padStart(7)} ${e.ms.toFixed(1).padStart(9)} ${((100 * e.ms) / total).toFixed(1).padStart(6)}`);
  lines.push(`${'total'.padEnd(30)} ${''.padStart(7)} ${total.toFixed(1).padStart(9)}`);
  return lines.join('\n');
}
