/**
 * Lumen's generated arithmetic task: `a op b =` with the result as the answer, e.g. `12+35=`
 * → `47`. Deterministic in the seed, so a split is just a different seed.
 */
import { Rng } from '../../tensor/rng.ts';
import type { EvalItem } from '../item.ts';

/** Settings of a generated arithmetic set. */
export interface ArithmeticSpec {
  /** Number of problems. */
  n: number;
  seed: number;
  /** Digits of each operand (operands are drawn uniformly from [0, 10^digits)). */
  digits: number;
  /** Operators to draw from. */
  ops: ('+' | '-' | '*')[];
}

/** Generates `n` problems; the same spec always gives the same problems. */
export function generateArithmetic(spec: ArithmeticSpec): EvalItem[] {
  const rng = new Rng(spec.seed);
  const top = 10 ** spec.digits;
  const items: EvalItem[] = [];
  for (let i = 0; i < spec.n; i++) {
    const a = rng.int(top), b = rng.int(top);
    const op = spec.ops[rng.int(spec.ops.length)]!;
    const result = op === '+' ? a + b : op === '-' ? a - b : a * b;
    items.push({ id: `arithmetic-s${spec.seed}#${i}`, question: `${a}${op}${b}=`, answer: String(result), fields: { a: String(a), b: String(b), op } });
  }
  return items;
}
