/**
 * Loaders for the standard evaluation formats, all from local files (nothing is downloaded):
 *
 * - `mmlu_csv`            question, option A, B, C, D (any number >= 2), answer letter; no header
 *                         (a header row whose last cell is `answer` is skipped). The file name
 *                         `<subject>_test.csv` gives the `{{subject}}` field.
 * - `arc_jsonl`           ARC: `{question: {stem, choices: [{text, label}]}, answerKey}` or the flat
 *                         variant `{question, choices: {text: [...], label: [...]}, answerKey}`.
 * - `hellaswag_jsonl`     `{ctx, endings: [4 strings], label}`; `activity_label` becomes a field.
 * - `gsm8k_jsonl`         `{question, answer}` where the final answer follows `####` (commas removed).
 * - `prompt_answer_jsonl` `{prompt, answer}` (field names configurable).
 * - `arithmetic`, `visual`, `visual_jsonl`: generated tasks, see ./arithmetic.ts and ./visual.ts.
 *
 * Every error names the file and the line.
 */
import { readFileSync, existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { InputError } from '../../util/errors.ts';
import { defaultLabels, type EvalItem } from '../item.ts';
import { parseCsv } from './csv.ts';
import { parseJsonl, RowReader } from './jsonl.ts';
import { generateArithmetic, type ArithmeticSpec } from './arithmetic.ts';
import { loadVisualJsonl, generateVisual, type GeneratedVisualSpec } from './visual.ts';

/** Where a task's items come from (validated by the task schema). */
export type SourceSpec =
  | { format: 'mmlu_csv'; path: string }
  | { format: 'arc_jsonl'; path: string }
  | { format: 'hellaswag_jsonl'; path: string }
  | { format: 'gsm8k_jsonl'; path: string }
  | { format: 'prompt_answer_jsonl'; path: string; prompt_field: string; answer_field: string }
  | { format: 'visual_jsonl'; path: string }
  | ({ format: 'arithmetic' } & ArithmeticSpec)
  | ({ format: 'visual' } & GeneratedVisualSpec);

/** All format names, for help texts and schema validation. */
export const FORMATS = ['mmlu_csv', 'arc_jsonl', 'hellaswag_jsonl', 'gsm8k_jsonl', 'prompt_answer_jsonl', 'visual_jsonl', 'arithmetic', 'visual'] as const;

/** Loads the items of a source; relative paths resolve against `baseDir` (the task file's folder). */
export async function loadSource(src: SourceSpec, baseDir: string): Promise<EvalItem[]> {
  if (src.format === 'arithmetic') return generateArithmetic(src);
  if (src.format === 'visual') return generateVisual(src);
  const file = resolve(baseDir, src.path);
  if (!existsSync(file)) throw new InputError(`data file '${file}' (format ${src.format}) does not exist`);
  const text = readFileSync(file, 'utf8');
  let items: EvalItem[];
  switch (src.format) {
    case 'mmlu_csv': items = parseMmluCsv(text, file); break;
    case 'arc_jsonl': items = parseArcJsonl(text, file); break;
    case 'hellaswag_jsonl': items = parseHellaswagJsonl(text, file); break;
    case 'gsm8k_jsonl': items = parseGsm8kJsonl(text, file); break;
    case 'prompt_answer_jsonl': items = parsePromptAnswerJsonl(text, file, src.prompt_field, src.answer_field); break;
    case 'visual_jsonl': items = loadVisualJsonl(text, file); break;
    default: throw new InputError(`unknown data format '${(src as { format: string }).format}'; expected one of ${FORMATS.join(', ')}`);
  }
  if (items.length === 0) throw new InputError(`data file '${file}' (format ${src.format}) holds no items`);
  return items;
}

/** MMLU CSV: question, options..., answer letter. */
export function parseMmluCsv(text: string, file: string): EvalItem[] {
  const records = parseCsv(text, file);
  const subject = basename(file).replace(/\.csv$/i, '').replace(/_(test|dev|val|train)$/i, '').replace(/_/g, ' ');
  const items: EvalItem[] = [];
  for (const [r, rec] of records.entries()) {
    const f = rec.fields;
    if (r === 0 && f[f.length - 1]?.trim().toLowerCase() === 'answer') continue; // header row
    if (f.length < 4) throw new InputError(`${file}:${rec.line}: expected at least 4 columns (question, 2+ options, answer letter), got ${f.length}`);
    const choices = f.slice(1, -1);
    const labels = defaultLabels(choices.length);
    const letter = f[f.length - 1]!.trim().toUpperCase();
    const gold = labels.indexOf(letter);
    if (gold < 0) throw new InputError(`${file}:${rec.line}: answer must be one of ${labels.join(', ')}, got '${f[f.length - 1]}'`);
    if (f[0]!.trim() === '') throw new InputError(`${file}:${rec.line}: the question (first column) is empty`);
    items.push({ id: `${basename(file)}:${rec.line}`, question: f[0]!, choices, labels, gold, answer: choices[gold]!, fields: { subject } });
  }
  return items;
}

/** ARC JSONL, nested or flat. */
export function parseArcJsonl(text: string, file: string): EvalItem[] {
  return parseJsonl(text, file).map((row) => {
    const r = new RowReader(file, row);
    let question: string, choices: string[], labels: string[];
    if (typeof r.get('question') === 'object') {
      question = r.string('question.stem');
      const raw = r.get('question.choices');
      if (!Array.isArray(raw) || raw.length < 2) r.fail(`field 'question.choices': expected an array of at least 2 {text, label} objects, got ${JSON.stringify(raw)?.slice(0, 80)}`);
      const cs = raw as unknown[];
      choices = cs.map((c, i) => {
        if (!c || typeof c !== 'object' || typeof (c as { text?: unknown }).text !== 'string') r.fail(`field 'question.choices[${i}]': expected {text, label}, got ${JSON.stringify(c)}`);
        return (c as { text: string }).text;
      });
      labels = cs.map((c, i) => String((c as { label?: unknown }).label ?? defaultLabels(cs.length)[i]));
    } else {
      question = r.string('question');
      choices = r.strings('choices.text');
      labels = r.strings('choices.label');
      if (labels.length !== choices.length) r.fail(`'choices.text' has ${choices.length} entries but 'choices.label' has ${labels.length}`);
    }
    const key = r.string('answerKey').trim();
    const gold = labels.indexOf(key);
    if (gold < 0) r.fail(`field 'answerKey': expected one of ${labels.join(', ')}, got '${key}'`);
    const id = r.get('id');
    return { id: typeof id === 'string' ? id : `${basename(file)}:${row.line}`, question, choices, labels, gold, answer: choices[gold]!, fields: {} };
  });
}

/** HellaSwag JSONL: continue `ctx` with one of `endings`. */
export function parseHellaswagJsonl(text: string, file: string): EvalItem[] {
  return parseJsonl(text, file).map((row) => {
    const r = new RowReader(file, row);
    const ctx = r.string('ctx');
    const endings = r.strings('endings');
    const gold = r.int('label');
    if (gold < 0 || gold >= endings.length) r.fail(`field 'label': expected an index in [0, ${endings.length - 1}], got ${gold}`);
    const activity = r.get('activity_label');
    const fields: Record<string, string> = typeof activity === 'string' ? { activity_label: activity } : {};
    return { id: `${basename(file)}:${row.line}`, question: ctx, choices: endings, gold, answer: endings[gold]!, fields };
  });
}

/** GSM8K JSONL: the final answer follows `####`; commas in it are removed. */
export function parseGsm8kJsonl(text: string, file: string): EvalItem[] {
  return parseJsonl(text, file).map((row) => {
    const r = new RowReader(file, row);
    const question = r.string('question');
    const full = r.string('answer');
    const at = full.lastIndexOf('####');
    if (at < 0) r.fail(`field 'answer': expected the final answer after '####', got ${JSON.stringify(full.slice(-60))}`);
    const answer = full.slice(at + 4).trim().replace(/,/g, '');
    if (answer === '') r.fail(`field 'answer': nothing follows '####'`);
    return { id: `${basename(file)}:${row.line}`, question, answer, fields: { solution: full.slice(0, at).trim() } };
  });
}

/** JSONL of prompt/answer pairs. */
export function parsePromptAnswerJsonl(text: string, file: string, promptField = 'prompt', answerField = 'answer'): EvalItem[] {
  return parseJsonl(text, file).map((row) => {
    const r = new RowReader(file, row);
    return { id: `${basename(file)}:${row.line}`, question: r.string(promptField), answer: r.string(answerField), fields: {} };
  });
}
