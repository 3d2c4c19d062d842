/**
 * Configuration of the rule-based reward models (RBRMs): the four response classes, the
 * rubrics (which prompts each covers, by policy tag, and the reward for each class), the
 * features of the program grader and the rules that tag plain-text prompts. YAML or JSON,
 * validated with zod; `data/policy/rubrics.yaml` is the default. Regular expressions are
 * compiled at load time so a bad pattern fails there, naming its place in the file.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { InputError } from '../util/errors.ts';
import { DEFAULT_RUBRICS_PATH } from './policy.ts';

/** The four classes: A desired refusal, B undesired refusal, C disallowed content, D safe compliance. */
export const RUBRIC_CLASSES = ['A', 'B', 'C', 'D'] as const;
export type RubricClass = (typeof RUBRIC_CLASSES)[number];

const patterns = z.array(z.string().min(1));
const rewards = z.strictObject({ A: z.number(), B: z.number(), C: z.number(), D: z.number() });

const RubricSchema = z.strictObject({
  id: z.string().min(1),
  description: z.string().min(1),
  /** Policy tags (family kinds, family ids or extra tags) of the prompts this rubric grades. */
  covers: z.array(z.string().min(1)).min(1),
  rewards,
  /**
   * Weight of the learned reward model's score on the prompts this rubric covers, in RL
   * (multiplies the PPO `rmCoef`; default 1). 0 leaves those prompts to the rubric alone, for
   * behaviour the reward model does not judge reliably.
   */
  reward_model_weight: z.number().min(0).default(1),
  /** Which grader decides the class (default: the config's `grader`). */
  grader: z.enum(['program', 'model']).optional(),
});

const ConfigSchema = z.strictObject({
  version: z.literal(1),
  grader: z.enum(['program', 'model']).default('program'),
  classes: z.strictObject({ A: z.string(), B: z.string(), C: z.string(), D: z.string() }),
  rubrics: z.array(RubricSchema).min(1),
  unparsed_reward: z.number().default(0),
  program: z.strictObject({
    refusal: patterns.min(1), preachy: patterns, evasive: patterns, deflection: patterns, alternative: patterns,
    compliance: patterns, disallowed_terms: patterns, idk: patterns,
    max_desired_words: z.number().int().min(1),
    require_alternative: z.boolean(),
    stopwords: z.array(z.string()).default([]),
  }),
  tagging: z.array(z.strictObject({ tag: z.string().min(1), patterns: patterns.min(1) })).default([]),
});

export type Rubric = z.infer<typeof RubricSchema>;
type RawConfig = z.infer<typeof ConfigSchema>;

/** Program-grader features with compiled patterns. */
export interface ProgramFeatures {
  refusal: RegExp[]; preachy: RegExp[]; evasive: RegExp[]; deflection: RegExp[]; alternative: RegExp[];
  compliance: RegExp[]; disallowedTerms: RegExp[]; idk: RegExp[];
  maxDesiredWords: number; requireAlternative: boolean; stopwords: Set<string>;
}

/** A validated rubric config with compiled patterns. */
export interface RubricConfig {
  grader: 'program' | 'model';
  classes: Record<RubricClass, string>;
  rubrics: Rubric[];
  unparsedReward: number;
  program: ProgramFeatures;
  tagging: { tag: string; patterns: RegExp[] }[];
}

/** Reads and validates a rubric config (YAML or JSON). */
export function loadRubricConfig(path = DEFAULT_RUBRICS_PATH): RubricConfig {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new InputError(`rubric config ${path}: cannot read or parse (${(e as Error).message})`);
  }
  return parseRubricConfig(raw, path);
}

/** Validates an already-parsed rubric config; `source` names it in errors. */
export function parseRubricConfig(raw: unknown, source = 'rubric config'): RubricConfig {
  const r = ConfigSchema.safeParse(raw);
  if (!r.success) {
    throw new InputError(`rubric config ${source}: invalid: ${r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const c: RawConfig = r.data;
  const ids = new Set<string>();
  for (const rb of c.rubrics) {
    if (ids.has(rb.id)) throw new InputError(`rubric config ${source}: duplicate rubric id '${rb.id}'`);
    ids.add(rb.id);
  }
  const compile = (list: string[], where: string): RegExp[] => list.map((p, i) => {
    try {
      return new RegExp(p, 'i');
    } catch (e) {
      throw new InputError(`rubric config ${source}: ${where}[${i}]: bad regular expression ${JSON.stringify(p)}: ${(e as Error).message}`);
    }
  });
  const p = c.program;
  return {
    grader: c.grader,
    classes: c.classes,
    rubrics: c.rubrics,
    unparsedReward: c.unparsed_reward,
    program: {
      refusal: compile(p.refusal, 'program.refusal'), preachy: compile(p.preachy, 'program.preachy'),
      evasive: compile(p.evasive, 'program.evasive'), deflection: compile(p.deflection, 'program.deflection'), alternative: compile(p.alternative, 'program.alternative'),
      compliance: compile(p.compliance, 'program.compliance'), disallowedTerms: compile(p.disallowed_terms, 'program.disallowed_terms'),
      idk: compile(p.idk, 'program.idk'),
      maxDesiredWords: p.max_desired_words, requireAlternative: p.require_alternative,
      stopwords: new Set(p.stopwords.map((w) => w.toLowerCase())),
    },
    tagging: c.tagging.map((t, i) => ({ tag: t.tag, patterns: compile(t.patterns, `tagging[${i}].patterns`) })),
  };
}
