/** Exam scoring: a raw score mapped to a percentile through a user-supplied table. */

/** One row of a conversion table. Rows are sorted by strictly increasing `raw`. */
export interface PercentileRow {
  raw: number;
  percentile: number;
}

/** Linear interpolation in the table; scores outside it take the first or last row's percentile. */
export function toPercentile(raw: number, table: readonly PercentileRow[]): number {
  const first = table[0]!, last = table[table.length - 1]!;
  if (raw <= first.raw) return first.percentile;
  if (raw >= last.raw) return last.percentile;
  let i = 1;
  while (table[i]!.raw < raw) i++;
  const a = table[i - 1]!, b = table[i]!;
  return a.percentile + ((raw - a.raw) / (b.raw - a.raw)) * (b.percentile - a.percentile);
}

/** The raw exam score of an accuracy over `n` items: 100 * acc ('percent') or the number right ('count'). */
export function rawScore(acc: number, n: number, kind: 'percent' | 'count'): number {
  return kind === 'percent' ? 100 * acc : acc * n;
}
