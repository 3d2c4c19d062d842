/** Helpers to run the PyTorch reference scripts under test/parity (Debian's python3-torch). */
import { spawnSync } from 'node:child_process';

export const PYTHON = '/usr/bin/python3';

let available: boolean | null = null;
/** True when /usr/bin/python3 can import torch (CI installs python3-torch). */
export function torchAvailable(): boolean {
  if (available === null) available = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  return available;
}

export function runPython(script: string, args: string[]): void {
  const r = spawnSync(PYTHON, [script, ...args], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: args[args.length - 1] } });
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}): ${r.stderr}`);
}

/** max |a - b| / max(max |b|, floor): relative error on the scale of the reference. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-30): number {
  if (a.length !== b.length) return Infinity;
  let md = 0, mb = floor;
  for (let i = 0; i < a.length; i++) { md = Math.max(md, Math.abs(a[i]! - b[i]!)); mb = Math.max(mb, Math.abs(b[i]!)); }
  return md / mb;
}
