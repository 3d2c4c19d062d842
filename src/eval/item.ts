/**
 * One evaluation item, whatever file format it came from. Multiple-choice items carry `choices`
 * and the index of the right one; free-answer items carry only `answer`.
 */
export interface EvalItem {
  /** Stable id: `<file>:<line>` for file data, `<task>#<i>` for generated data. */
  id: string;
  /** The question (for HellaSwag: the context to continue). */
  question: string;
  /** Choices of a multiple-choice item, in display order. */
  choices?: string[];
  /** Labels of the choices as the source names them (A-D, or ARC's 1-4); defaults to A, B, C, ... */
  labels?: string[];
  /** Index of the right choice (multiple choice only). */
  gold?: number;
  /** The right answer as text: the right choice's text for multiple choice, the reference answer otherwise. */
  answer: string;
  /** Images (data URLs, http(s) URLs or file paths) shown with the question. */
  images?: string[];
  /** Extra fields usable in prompt templates as {{name}} (e.g. `subject`). */
  fields: Record<string, string>;
}

/** Default labels: A, B, C, ... */
export function defaultLabels(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String.fromCharCode(65 + i));
}

/** Labels of a multiple-choice item. */
export function labelsOf(item: EvalItem): string[] {
  return item.labels ?? defaultLabels(item.choices?.length ?? 0);
}

/** The text of an item as a model would see it (question and choices), used by the contamination check. */
export function itemText(item: EvalItem): string {
  return [item.question, ...(item.choices ?? [])].join('\n');
}
