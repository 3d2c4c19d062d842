/**
 * Shared output of every benchmark: a table with ratios on stdout and
 * bench/results/<name>.json as {"bench", "rows": [{case, unit, lumen, peer, peer_value, ratio}]},
 * ratio oriented so that higher is better for Lumen. Machine facts go alongside.
 */
import { cpus, totalmem } from 'node:os';
import { writeJsonAtomic } from '../src/util/fs.ts';

export interface BenchRow {
  case: string;
  unit: string;
  lumen: number;
  peer: string;
  peer_value: number;
  ratio: number;
}

export function machine(): string {
  const c = cpus();
  return `${c[0]?.model ?? 'unknown CPU'} × ${c.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 1000 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 0.01 ? x.toFixed(3) : x.toExponential(2);
}

export function printTable(rows: BenchRow[]): void {
  const head = ['case', 'unit', 'lumen', 'peer', 'peer value', 'ratio'];
  const body = rows.map((r) => [r.case, r.unit, fmt(r.lumen), r.peer, fmt(r.peer_value), fmt(r.ratio) + 'x']);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i !== 3 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ');
  console.log(line(head));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const b of body) console.log(line(b));
}

export function writeResults(name: string, rows: BenchRow[], extra: Record<string, unknown> = {}): void {
  const path = `bench/results/${name}.json`;
  writeJsonAtomic(path, { bench: name, machine: machine(), date: new Date().toISOString(), ...extra, rows });
  console.log(`\nwrote ${path} (${machine()})`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
