/**
 * Answer extraction for generated text:
 * - `exact`: the first non-empty line, normalised (trimmed, lower case, inner whitespace collapsed,
 *   trailing period removed), equals the normalised reference;
 * - `numeric`: the last number in the text (commas removed, `$` and `%` ignored) is within
 *   `tolerance` of the reference number;
 * - `regex`: group 1 of the first match (or the whole match) equals the reference after
 *   the `exact` normalisation;
 * - `letter`: the last standalone choice label (A, B, ... or the item's labels) in the text
 *   equals the right label; "answer is (C)" style phrases win over stray letters.
 */
import type { ExtractSpec } from './task.ts';

/** The normalisation `exact` applies to both sides. */
export function normaliseAnswer(s: string): string {
  return s.trim().toLowerCase().replace(/\s+/g, ' ').replace(/[.]+$/, '').trim();
}

/** The last number in `text` (e.g. "so she pays $1,234.50." → 1234.5), or null. */
export function lastNumber(text: string): number | null {
  const m = text.replace(/(\d),(?=\d{3}\b)/g, '$1').match(/-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?/g);
  if (!m) return null;
  const x = Number(m[m.length - 1]);
  return Number.isFinite(x) ? x : null;
}

/** The choice label the text settles on, or null. */
export function extractLetter(text: string, labels: string[]): string | null {
  const alt = labels.map((l) => l.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  const phrase = new RegExp(`[Aa]nswer\\s*(?:is|:)?\\s*[:(\\[]?\\s*(${alt})(?![A-Za-z0-9])`, 'g');
  let last: string | null = null;
  for (const m of text.matchAll(phrase)) last = m[1]!;
  if (last === null) {
    const bare = new RegExp(`(?:^|[^A-Za-z0-9])(${alt})(?=$|[^A-Za-z0-9])`, 'g');
    for (const m of text.matchAll(bare)) last = m[1]!;
  }
  if (last === null) return null;
  return last;
}

/** What was extracted from a generation (null = nothing usable) and whether it is right. */
export interface Extracted {
  prediction: string | null;
  correct: boolean;
}

/** Extracts an answer from `text` and compares it with `reference` (for `letter`: the right label). */
export function extractAndCompare(text: string, reference: string, spec: ExtractSpec, labels: string[] = []): Extracted {
  switch (spec.kind) {
    case 'exact': {
      const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
      return { prediction: line, correct: normaliseAnswer(line) === normaliseAnswer(reference) };
    }
    case 'numeric': {
      const x = lastNumber(text);
      const ref = lastNumber(reference);
      if (x === null || ref === null) return { prediction: x === null ? null : String(x), correct: false };
      return { prediction: String(x), correct: Math.abs(x - ref) <= spec.tolerance };
    }
    case 'regex': {
      const m = new RegExp(spec.pattern!, spec.flags).exec(text);
      if (!m) return { prediction: null, correct: false };
      const got = m[1] ?? m[0];
      return { prediction: got, correct: normaliseAnswer(got) === normaliseAnswer(reference) };
    }
    case 'letter': {
      const got = extractLetter(text, labels);
      return { prediction: got, correct: got !== null && got === reference };
    }
    default: {
      const never: never = spec.kind;
      throw new Error(`unknown extract kind ${String(never)}`);
    }
  }
}
