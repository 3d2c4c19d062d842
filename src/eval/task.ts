/**
 * Task files: YAML or JSON documents that say where the items come from, how to prompt, how to
 * score and what to report. Validated with zod; every error names the file and the line.
 *
 *   name: mmlu-sample
 *   source: { format: mmlu_csv, path: data/mmlu_sample.csv }
 *   prompt:
 *     template: "{{question}}\n{{choices}}\nAnswer:"
 *     continuation: " {{label}}"
 *   scoring: { mode: loglikelihood }
 *   fewshot: { k: 2, seed: 1, source: { format: mmlu_csv, path: data/mmlu_dev.csv } }
 *   metrics: [acc, acc_norm]
 *
 * See docs/eval.md for every field.
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, resolve, join } from 'node:path';
import { z } from 'zod';
import { parseDocument, LineCounter, isMap, isSeq, type Node } from 'yaml';
import { InputError } from '../util/errors.ts';
import type { SourceSpec } from './formats/loaders.ts';

const path = z.string().min(1);

/** The schema of a data source. */
export const SourceSchema = z.discriminatedUnion('format', [
  z.object({ format: z.literal('mmlu_csv'), path }).strict(),
  z.object({ format: z.literal('arc_jsonl'), path }).strict(),
  z.object({ format: z.literal('hellaswag_jsonl'), path }).strict(),
  z.object({ format: z.literal('gsm8k_jsonl'), path }).strict(),
  z.object({ format: z.literal('visual_jsonl'), path }).strict(),
  z.object({ format: z.literal('prompt_answer_jsonl'), path, prompt_field: z.string().default('prompt'), answer_field: z.string().default('answer') }).strict(),
  z.object({
    format: z.literal('arithmetic'), n: z.number().int().min(1).max(1_000_000), seed: z.number().int(),
    digits: z.number().int().min(1).max(15).default(2), ops: z.array(z.enum(['+', '-', '*'])).min(1).default(['+']),
  }).strict(),
  z.object({
    format: z.literal('visual'), tasks: z.array(z.string()).min(1), split: z.string().default('heldout'),
    seed: z.number().int().default(0), n: z.number().int().min(1).max(100_000), size: z.number().int().min(8).max(1024).default(64),
  }).strict(),
]);

/** How a generated answer is turned into something comparable with the reference. */
export const ExtractSchema = z.object({
  /** exact: normalised string equality; numeric: last number within tolerance; regex: first capture group; letter: last choice label. */
  kind: z.enum(['exact', 'numeric', 'regex', 'letter']).default('exact'),
  /** numeric: absolute tolerance. */
  tolerance: z.number().min(0).default(1e-6),
  /** regex: a JavaScript regular expression; group 1 (or the whole match) is the answer. */
  pattern: z.string().optional(),
  flags: z.string().regex(/^[imsu]*$/).default(''),
}).strict();

const ScoringSchema = z.object({
  /** loglikelihood: multiple choice by log P(choice | prompt); generate: free answer + extraction; cot: explanation then extraction. */
  mode: z.enum(['loglikelihood', 'generate', 'cot']),
  extract: ExtractSchema.default({ kind: 'exact', tolerance: 1e-6, flags: '' }),
  max_tokens: z.number().int().min(1).max(32768).default(32),
  temperature: z.number().min(0).max(2).default(0),
  stop: z.array(z.string()).max(4).optional(),
  cot: z.object({
    /** Appended to the prompt to start the explanation. */
    trigger: z.string().default(" Let's think step by step."),
    temperature: z.number().min(0).max(2).default(0.3),
    max_tokens: z.number().int().min(1).max(32768).default(256),
    /** If set, a second greedy generation continues prompt + explanation + this text and the answer is extracted from it; otherwise from the explanation. */
    answer_prompt: z.string().optional(),
  }).strict().default({ trigger: " Let's think step by step.", temperature: 0.3, max_tokens: 256 }),
}).strict();

const PromptSchema = z.object({
  /** The question as the model sees it: {{question}}, {{choices}} ("A. text" lines), {{answer}}, {{label}} and item fields. */
  template: z.string().default('{{question}}\nAnswer:'),
  /** loglikelihood mode: the continuation scored for each choice ({{choice}}, {{label}}). */
  continuation: z.string().default(' {{choice}}'),
  /** The answer shown after each few-shot example's template (generate/cot modes). */
  fewshot_target: z.string().default(' {{answer}}'),
  /** Between few-shot examples and the question. */
  separator: z.string().default('\n\n'),
  /** Text put before everything (an instruction). */
  preamble: z.string().default(''),
}).strict();

/** The schema of a whole task file. */
export const TaskSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
  description: z.string().optional(),
  source: SourceSchema,
  prompt: PromptSchema.default({ template: '{{question}}\nAnswer:', continuation: ' {{choice}}', fewshot_target: ' {{answer}}', separator: '\n\n', preamble: '' }),
  scoring: ScoringSchema,
  fewshot: z.object({
    k: z.number().int().min(0).max(64).default(0),
    seed: z.number().int().default(1234),
    /** A separate split the examples are drawn from (required when k > 0). */
    source: SourceSchema.optional(),
  }).strict().default({ k: 0, seed: 1234 }),
  /** The first metric is the headline score in eval.json. */
  metrics: z.array(z.enum(['acc', 'acc_norm', 'percentile'])).min(1).default(['acc']),
  /** Exam scoring: raw score → percentile by linear interpolation in a user table (clamped at its ends). */
  exam: z.object({
    /** percent: raw = 100 * accuracy; count: raw = number of items right. */
    raw: z.enum(['percent', 'count']).default('percent'),
    table: z.array(z.object({ raw: z.number(), percentile: z.number().min(0).max(100) }).strict()).min(2),
  }).strict().optional(),
  /** Seed for bootstrap resampling and sampled generations. */
  seed: z.number().int().default(0),
}).strict();

/** A validated task, with its file and the folder its relative paths resolve against. */
export type TaskSpec = z.infer<typeof TaskSchema> & { file: string; baseDir: string };
export type ExtractSpec = z.infer<typeof ExtractSchema>;

/** Finds the YAML node at a path, or the deepest existing ancestor. */
function nodeAt(root: Node | null, p: PropertyKey[]): Node | null {
  let node: Node | null = root;
  for (const key of p) {
    if (isMap(node)) {
      const pair = node.items.find((it) => (it.key as { value?: unknown } | null)?.value === key);
      if (!pair || !pair.value) return (pair?.key as Node | undefined) ?? node;
      node = pair.value as Node;
    } else if (isSeq(node) && typeof key === 'number') {
      const next = node.items[key] as Node | undefined;
      if (!next) return node;
      node = next;
    } else return node;
  }
  return node;
}

/** Parses and validates task file text. `file` names the source in errors (`file:line: field: problem`). */
export function parseTask(text: string, file: string): TaskSpec {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = lc.linePos(e.pos[0]).line;
    throw new InputError(`${file}:${line}: not valid YAML/JSON: ${e.message.split('\n')[0]}`);
  }
  const raw = doc.toJS() as unknown;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new InputError(`${file}:1: expected a mapping of task settings (name, source, scoring, ...), got ${raw === null ? 'an empty document' : typeof raw}`);
  const r = TaskSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    const node = nodeAt(doc.contents as Node | null, path);
    const line = node?.range ? lc.linePos(node.range[0]).line : 1;
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    let value: unknown = raw;
    for (const k of issue.path) value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[k] : undefined;
    const msg = value === undefined && issue.path.length > 0 ? `missing (required): ${issue.message}` : issue.message;
    throw new InputError(`${file}:${line}: ${where}: ${msg}`);
  }
  const t = r.data;
  const fail = (p: (string | number)[], msg: string): never => {
    const node = nodeAt(doc.contents as Node | null, p);
    const line = node?.range ? lc.linePos(node.range[0]).line : 1;
    throw new InputError(`${file}:${line}: ${p.join('.')}: ${msg}`);
  };
  if (t.metrics.includes('acc_norm') && t.scoring.mode !== 'loglikelihood') fail(['metrics'], `acc_norm needs scoring.mode loglikelihood, got ${t.scoring.mode}`);
  if (t.metrics.includes('percentile') && !t.exam) fail(['metrics'], 'percentile needs an exam: {table: [...]} section');
  if (t.fewshot.k > 0 && !t.fewshot.source) fail(['fewshot'], `k = ${t.fewshot.k} needs fewshot.source (a separate split to draw examples from)`);
  if (t.scoring.extract.kind === 'regex') {
    if (!t.scoring.extract.pattern) fail(['scoring', 'extract'], 'kind regex needs a pattern');
    try { new RegExp(t.scoring.extract.pattern!, t.scoring.extract.flags); } catch (e) { fail(['scoring', 'extract', 'pattern'], `invalid regular expression: ${(e as Error).message}`); }
  }
  if (t.exam) {
    for (let i = 1; i < t.exam.table.length; i++) {
      const a = t.exam.table[i - 1]!, b = t.exam.table[i]!;
      if (!(b.raw > a.raw)) fail(['exam', 'table', i], `raw scores must increase down the table, got ${a.raw} then ${b.raw}`);
      if (b.percentile < a.percentile) fail(['exam', 'table', i], `percentiles must not decrease down the table, got ${a.percentile} then ${b.percentile}`);
    }
  }
  return { ...t, file, baseDir: dirname(resolve(file)) };
}

/** Reads and validates a task file. */
export function loadTask(file: string): TaskSpec {
  if (!existsSync(file)) throw new InputError(`task file '${file}' does not exist`);
  return parseTask(readFileSync(file, 'utf8'), file);
}

/**
 * Resolves a task reference: a path to a task file, or a bare name looked up as
 * `<dir>/<name>.yaml|.yml|.json` in each of `searchDirs` (default: ./tasks).
 */
export function resolveTaskRef(ref: string, searchDirs: string[] = ['tasks']): string {
  if (existsSync(ref)) return ref;
  if (!/[\\/]/.test(ref) && !/\.(ya?ml|json)$/i.test(ref)) {
    for (const dir of searchDirs) for (const ext of ['.yaml', '.yml', '.json']) {
      const p = join(dir, ref + ext);
      if (existsSync(p)) return p;
    }
  }
  throw new InputError(`task '${ref}': no such file, and no ${searchDirs.map((d) => `${d}/${ref}.yaml|.yml|.json`).join(' or ')}`);
}

/** The source of a task as the loaders take it. */
export function sourceOf(t: TaskSpec): SourceSpec {
  return t.source as SourceSpec;
}
