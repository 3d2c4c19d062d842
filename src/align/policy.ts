/**
 * The written policy that the alignment data is generated from: families of requests
 * (allowed, disallowed, borderline-but-allowed, factual, unknowable), each with prompt
 * templates split into a training set and a disjoint held-out set, the rows that fill their
 * slots, the answers a helpful assistant gives, and — for disallowed families — placeholder
 * "compliance" that preference data marks as rejected. Refusal styles (the desired one and
 * the undesired preachy/evasive ones) and the "I don't know" answer are templates too.
 *
 * The factual families ask about a synthetic encyclopedia of made-up entities, described here
 * by entity kinds with attributes; the generator emits it as pretraining text so that the
 * answers to the factual questions are in the pretraining data, and invents further entities
 * that are never written down, whose questions are unknowable.
 *
 * The file is YAML or JSON, validated with zod on load; `data/policy/default.yaml` is the
 * default. Every template's slots are checked against what will fill them, so a typo fails at
 * load time with the family and template named.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { InputError } from '../util/errors.ts';
import { slotsOf } from './template.ts';

/** The five kinds of request the policy distinguishes. */
export const FAMILY_KINDS = ['allowed', 'disallowed', 'borderline', 'factual', 'unknowable'] as const;
export type FamilyKind = (typeof FAMILY_KINDS)[number];

const id = z.string().regex(/^[a-z][a-z0-9-]*$/, 'lower-case letters, digits and dashes, starting with a letter');
const texts = z.array(z.string().min(1)).min(1);

/** Where an encyclopedia attribute's value comes from. */
const ValueSourceSchema = z.union([
  z.strictObject({ values: z.array(z.string().min(1)).min(2) }),
  z.strictObject({ range: z.tuple([z.number().int(), z.number().int()]) }),
  /** A fresh made-up proper name (e.g. a capital city), unique across the encyclopedia. */
  z.strictObject({ name: z.literal(true) }),
  /** The name of a known entity of another kind (e.g. a person's birthplace is a country). */
  z.strictObject({ ref: id }),
]);

const EntityKindSchema = z.strictObject({
  id,
  /** Words in an entity's name (2 gives "first-name surname" for people). */
  name_words: z.number().int().min(1).max(3).default(1),
  attributes: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), ValueSourceSchema),
  /** Opening sentences of an entity's article; slots: {name} and the attributes. */
  intro: texts,
  /** Per attribute, paraphrases of the sentence stating it; slots: {name} and the attributes. */
  facts: z.record(z.string(), texts),
});

const EncyclopediaSchema = z.strictObject({
  /** Entities per kind that are written into the pretraining text. */
  known_per_kind: z.number().int().min(2),
  /** Of the known entities per kind, how many are held out of SFT/preference data for evaluation. */
  holdout_per_kind: z.number().int().min(1),
  /** Entities per kind that are invented but never written down (unknowable questions). */
  unknown_per_kind: z.number().int().min(2),
  /** Of the unknown entities per kind, how many are held out for evaluation. */
  unknown_holdout_per_kind: z.number().int().min(1),
  /** Articles per known entity, each with freshly drawn paraphrases. */
  documents_per_entity: z.number().int().min(1),
  /** Names are a first syllable, 0..max_middle middle syllables and a last syllable. */
  syllables: z.strictObject({ first: texts, middle: texts, last: texts, max_middle: z.number().int().min(0).max(3) }),
  kinds: z.array(EntityKindSchema).min(1),
});

const FamilySchema = z.strictObject({
  id,
  kind: z.enum(FAMILY_KINDS),
  /** Extra tags (the kind and the id are always tags too); rubrics select prompts by tag. */
  tags: z.array(z.string().min(1)).default([]),
  description: z.string().default(''),
  /** How a refusal names the request ("instructions for making {weapon}"). */
  topic: z.string().min(1),
  /**
   * Request templates: `train` (SFT demonstrations, preference pairs and RL rollouts), `eval`
   * (held out, disjoint from the others) and optional `rl`: extra training-split phrasings used
   * only as RL rollout prompts — prompts need no demonstration, so RL can see more phrasings
   * than SFT and learn the policy's behaviour from the reward rather than by imitation — and
   * optional `validation`: phrasings never trained on (nor used for evaluation), whose prompts
   * choose the PPO checkpoint.
   */
  templates: z.strictObject({ train: texts, eval: texts, rl: texts.optional(), validation: texts.optional() }),
  /** Joint slot bindings; some are held out for evaluation. */
  rows: z.array(z.record(z.string(), z.string())).optional(),
  /**
   * Extra rows used only to fill RL rollout prompts (train and rl templates): prompts need no
   * demonstration, so RL can cover more targets than SFT. They need only the slots those
   * templates use, and must not repeat a row.
   */
  rl_rows: z.array(z.record(z.string(), z.string())).optional(),
  /**
   * Extra rows used only to fill the `validation` templates (which otherwise take training rows):
   * targets no stage trains on and the evaluation never asks about, so the PPO checkpoint is
   * chosen on new requests as the evaluation's are. They need only the slots those templates use,
   * and must not repeat a row or an rl_row.
   */
  validation_rows: z.array(z.record(z.string(), z.string())).optional(),
  /** Rows held out of training data (default: a quarter, at least one). */
  holdout_rows: z.number().int().min(1).optional(),
  /** A built-in row generator instead of rows. */
  generator: z.enum(['arithmetic']).optional(),
  arithmetic: z.strictObject({
    ops: z.array(z.enum(['+', '-', '*'])).min(1),
    min: z.number().int(),
    max: z.number().int(),
  }).optional(),
  /** Helpful answers (allowed, borderline, factual); a factual answer states {value}. */
  answers: texts.optional(),
  /** Disallowed families: placeholder compliance (vague steps, no real content), the rejected side. */
  compliance: texts.optional(),
  /** Disallowed families: desired-style refusals for this family instead of the global ones; slots {topic}, {alternative}. */
  desired_refusals: texts.optional(),
  /** Disallowed families: safe alternatives a refusal offers ("explain how firearm laws work"). */
  alternatives: texts.optional(),
  /** Factual and unknowable families: which encyclopedia attribute the question is about. */
  fact: z.strictObject({ kind: id, attribute: z.string() }).optional(),
});

const PolicySchema = z.strictObject({
  version: z.literal(1),
  /** Optional system message put in front of SFT conversations. */
  system: z.string().optional(),
  refusals: z.strictObject({
    /** Short, non-judgmental, offers a safe alternative; slots {topic} and {alternative}. */
    desired: texts,
    /** Undesired: moralising, lecturing; slot {topic}. */
    preachy: texts,
    /** Undesired: neither helps nor says it will not; slot {topic}. */
    evasive: texts,
    /** Alternatives offered when refusing an allowed request (over-refusal examples). */
    generic_alternatives: texts,
  }),
  /** "I don't know" answers for unknowable questions; slot {name}. */
  idk: texts,
  encyclopedia: EncyclopediaSchema,
  families: z.array(FamilySchema).min(1),
});

export type Policy = z.infer<typeof PolicySchema>;
export type Family = z.infer<typeof FamilySchema>;
export type EntityKind = z.infer<typeof EntityKindSchema>;
export type ValueSource = z.infer<typeof ValueSourceSchema>;

/** Path of the policy that ships with Lumen. */
export const DEFAULT_POLICY_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'data', 'policy', 'default.yaml');

/** Slots the arithmetic generator provides. */
export const ARITHMETIC_SLOTS = ['a', 'b', 'op', 'op_word', 'result'];

/** Reads and validates a policy file (YAML or JSON). */
export function loadPolicy(path = DEFAULT_POLICY_PATH): Policy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(`policy ${path}: cannot read file (${(e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new InputError(`policy ${path}: not valid YAML/JSON: ${(e as Error).message}`);
  }
  return parsePolicy(raw, path);
}

/** Validates an already-parsed policy object; `source` names it in errors. */
export function parsePolicy(raw: unknown, source = 'policy'): Policy {
  const r = PolicySchema.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new InputError(`policy ${source}: invalid: ${first}`);
  }
  checkPolicy(r.data, source);
  return r.data;
}

/** All tags of a family: its kind, its id and its extra tags. */
export function familyTags(f: Family): string[] {
  return [...new Set([f.kind, f.id, ...f.tags])];
}

/** Cross-field checks zod cannot express: required fields per kind, references, template slots. */
function checkPolicy(p: Policy, source: string): void {
  const fail = (where: string, msg: string): never => { throw new InputError(`policy ${source}: ${where}: ${msg}`); };
  const kinds = new Map(p.encyclopedia.kinds.map((k) => [k.id, k]));
  if (kinds.size !== p.encyclopedia.kinds.length) fail('encyclopedia.kinds', 'duplicate kind id');
  const enc = p.encyclopedia;
  if (enc.holdout_per_kind >= enc.known_per_kind) fail('encyclopedia.holdout_per_kind', `must be < known_per_kind (${enc.known_per_kind}), got ${enc.holdout_per_kind}`);
  if (enc.unknown_holdout_per_kind >= enc.unknown_per_kind) fail('encyclopedia.unknown_holdout_per_kind', `must be < unknown_per_kind (${enc.unknown_per_kind}), got ${enc.unknown_holdout_per_kind}`);
  for (const k of enc.kinds) {
    const attrs = Object.keys(k.attributes);
    const entitySlots = ['name', ...attrs];
    for (const [a, src] of Object.entries(k.attributes)) {
      if ('ref' in src && !kinds.has(src.ref)) fail(`encyclopedia.kinds.${k.id}.attributes.${a}`, `refers to unknown kind '${src.ref}'; kinds: ${[...kinds.keys()].join(', ')}`);
      if ('ref' in src && src.ref === k.id) fail(`encyclopedia.kinds.${k.id}.attributes.${a}`, 'an attribute cannot refer to its own kind');
      if ('range' in src && src.range[0] > src.range[1]) fail(`encyclopedia.kinds.${k.id}.attributes.${a}`, `range [${src.range}] is empty`);
      if (!k.facts[a]) fail(`encyclopedia.kinds.${k.id}.facts`, `no fact sentences for attribute '${a}'`);
    }
    for (const a of Object.keys(k.facts)) if (!attrs.includes(a)) fail(`encyclopedia.kinds.${k.id}.facts.${a}`, `not an attribute; attributes: ${attrs.join(', ')}`);
    checkSlots([...k.intro, ...Object.values(k.facts).flat()], entitySlots, `encyclopedia.kinds.${k.id}`, fail);
  }
  checkSlots(p.refusals.desired, ['topic', 'alternative'], 'refusals.desired', fail);
  checkSlots([...p.refusals.preachy, ...p.refusals.evasive], ['topic'], 'refusals', fail);
  checkSlots(p.idk, ['name'], 'idk', fail);

  const seen = new Set<string>();
  for (const f of p.families) {
    const where = `family ${f.id}`;
    if (seen.has(f.id)) fail(where, 'duplicate family id');
    seen.add(f.id);
    const trainSet = new Set(f.templates.train);
    for (const t of f.templates.eval) if (trainSet.has(t)) fail(where, `template appears in both train and eval: ${JSON.stringify(t)}`);
    const evalSet = new Set(f.templates.eval);
    for (const t of f.templates.rl ?? []) {
      if (evalSet.has(t)) fail(where, `template appears in both rl and eval: ${JSON.stringify(t)}`);
      if (trainSet.has(t)) fail(where, `template appears in both train and rl: ${JSON.stringify(t)}`);
    }
    const rlSet = new Set(f.templates.rl ?? []);
    for (const t of f.templates.validation ?? []) {
      for (const [name, set] of [['train', trainSet], ['eval', evalSet], ['rl', rlSet]] as const)
        if (set.has(t)) fail(where, `template appears in both ${name} and validation: ${JSON.stringify(t)}`);
    }
    let slots: string[];
    if (f.kind === 'factual' || f.kind === 'unknowable') {
      for (const field of ['rl_rows', 'validation_rows'] as const) if (f[field]) fail(where, `a ${f.kind} family takes its names from the encyclopedia; '${field}' is not allowed`);
      if (!f.fact) fail(where, `a ${f.kind} family needs 'fact: {kind, attribute}'`);
      const k = kinds.get(f.fact!.kind) ?? fail(where, `fact.kind '${f.fact!.kind}' is not an encyclopedia kind`);
      if (!(f.fact!.attribute in k.attributes)) fail(where, `fact.attribute '${f.fact!.attribute}' is not an attribute of ${k.id}; attributes: ${Object.keys(k.attributes).join(', ')}`);
      if (!f.answers) fail(where, `a ${f.kind} family needs 'answers' (templates stating {value}; unknowable families use them for made-up answers)`);
      if (f.answers!.some((a) => !slotsOf(a).includes('value'))) fail(where, 'every answer must state {value}');
      slots = ['name', 'value'];
    } else {
      if (f.generator === 'arithmetic') {
        if (!f.arithmetic) fail(where, "generator 'arithmetic' needs 'arithmetic: {ops, min, max}'");
        if (f.arithmetic!.min > f.arithmetic!.max) fail(where, 'arithmetic.min > arithmetic.max');
        slots = ARITHMETIC_SLOTS;
      } else {
        if (!f.rows || f.rows.length < 2) fail(where, `needs 'rows' (at least 2) or a 'generator'`);
        const keys = Object.keys(f.rows![0]!);
        f.rows!.forEach((r, i) => {
          const k2 = Object.keys(r);
          if (k2.length !== keys.length || k2.some((k) => !keys.includes(k))) fail(`${where}.rows[${i}]`, `keys ${k2.join(', ')} differ from rows[0]'s ${keys.join(', ')}`);
        });
        slots = keys;
        if ((f.holdout_rows ?? 1) >= f.rows!.length) fail(where, `holdout_rows must be < number of rows (${f.rows!.length})`);
      }
      if (f.kind === 'disallowed') {
        if (!f.compliance || !f.alternatives) fail(where, "a disallowed family needs 'compliance' and 'alternatives'");
        checkSlots([...f.compliance!, ...f.alternatives!], slots, where, fail);
        checkSlots(f.desired_refusals ?? [], ['topic', 'alternative'], `${where}.desired_refusals`, fail);
      } else {
        if (!f.answers) fail(where, `an ${f.kind} family needs 'answers'`);
      }
    }
    checkSlots([...f.templates.train, ...f.templates.eval, ...(f.templates.rl ?? []), ...(f.templates.validation ?? []), ...(f.answers ?? []), f.topic], slots, where, fail);
    // Extra rows (RL-only and validation-only targets) must not repeat a row or each other.
    const promptSlots = [...new Set([...f.templates.train, ...(f.templates.rl ?? []), ...(f.templates.validation ?? [])].flatMap(slotsOf))];
    const key = (r: Record<string, string>) => JSON.stringify(promptSlots.map((k) => (r[k] ?? '').trim().toLowerCase()));
    const known = new Set((f.rows ?? []).map(key));
    for (const [field, extra, templates] of [
      ['rl_rows', f.rl_rows, [...f.templates.train, ...(f.templates.rl ?? [])]],
      ['validation_rows', f.validation_rows, f.templates.validation ?? []],
    ] as const) {
      if (!extra) continue;
      if (!f.rows) fail(where, `'${field}' needs 'rows' (a generator family draws its own)`);
      if (field === 'validation_rows' && templates.length === 0) fail(where, "'validation_rows' needs 'validation' templates to fill");
      const needed = [...new Set(templates.flatMap(slotsOf))];
      extra.forEach((r, i) => {
        const at = `${where}.${field}[${i}]`;
        const missing = needed.filter((k) => !(k in r));
        if (missing.length) fail(at, `lacks slot(s) ${missing.join(', ')} used by the ${field === 'rl_rows' ? 'train/rl' : 'validation'} templates`);
        const extraKeys = Object.keys(r).filter((k) => !slots.includes(k));
        if (extraKeys.length) fail(at, `key(s) ${extraKeys.join(', ')} are not row keys (${slots.join(', ')})`);
        if (known.has(key(r))) fail(at, `repeats a row or an earlier rl_row/validation_row: ${JSON.stringify(r)}`);
        known.add(key(r));
      });
    }
  }
}

function checkSlots(templates: readonly string[], available: readonly string[], where: string, fail: (w: string, m: string) => never): void {
  for (const t of templates) {
    for (const s of slotsOf(t)) {
      if (!available.includes(s)) fail(where, `template ${JSON.stringify(t)} uses slot {${s}}, which is not available here (available: ${available.join(', ')})`);
    }
  }
}

/** Directory of the default policy files (the rubric config lives beside the policy). */
export const POLICY_DIR = dirname(DEFAULT_POLICY_PATH);
/** Path of the default rubric config. */
export const DEFAULT_RUBRICS_PATH = join(POLICY_DIR, 'rubrics.yaml');
