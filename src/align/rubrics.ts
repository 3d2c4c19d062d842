/**
 * Rule-based reward models: `rewardFor(prompt, response)` finds the rubric that covers the
 * prompt (by the prompt's policy tags), classifies the response into A/B/C/D with the rubric's
 * grader (the program grader, or a model asked zero-shot with the rubric prompt) and returns
 * the rubric's reward for that class. Prompts no rubric covers get reward 0 and class null.
 *
 * A prompt is given either with its tags (`{ text, tags }`, as the generated data carries them)
 * or as plain text, whose tags come from a tagger: by default the config's `tagging` rules
 * (first matching rule wins), or `indexTagger` for exact look-up of known prompts.
 */
import { InputError } from '../util/errors.ts';
import { loadRubricConfig, type Rubric, type RubricClass, type RubricConfig } from './rubric-config.ts';
import { programGrade, type ProgramGrade } from './program-grader.ts';
import { modelGrade, type GraderModel, type ModelGrade } from './model-grader.ts';

/** A prompt with (optionally) its policy tags. */
export type PromptInput = string | { text: string; tags?: readonly string[] };

/** Maps plain prompt text to policy tags. */
export type Tagger = (prompt: string) => string[];

/** The result of `rewardFor`. `class` and `rubric` are null when no rubric covers the prompt (or a model answer was unparsable). */
export interface RuleReward {
  class: RubricClass | null;
  reward: number;
  rubric: string | null;
  grader: 'program' | 'model' | null;
  /** Program grader details or model grader details. */
  detail?: ProgramGrade | ModelGrade;
}

export interface RuleRewardOptions {
  /** Model for rubrics graded by a model. */
  model?: GraderModel;
  /** Tags for plain-text prompts (default: the config's tagging rules). */
  tagger?: Tagger;
  /** Grade every rubric with this grader, whatever the config says. */
  grader?: 'program' | 'model';
}

/** The rule-based reward model over a rubric config. */
export class RuleRewardModel {
  readonly config: RubricConfig;
  private readonly tagger: Tagger;

  constructor(config: RubricConfig = loadRubricConfig(), private readonly opts: RuleRewardOptions = {}) {
    this.config = config;
    this.tagger = opts.tagger ?? ruleTagger(config);
    const needsModel = config.rubrics.some((r) => this.graderOf(r) === 'model');
    if (needsModel && !opts.model) throw new InputError(`rule reward model: rubric(s) ${config.rubrics.filter((r) => this.graderOf(r) === 'model').map((r) => r.id).join(', ')} are graded by a model, but no model was given`);
  }

  /** Tags of a prompt (given ones, else from the tagger). */
  tagsOf(prompt: PromptInput): string[] {
    if (typeof prompt !== 'string' && prompt.tags) return [...prompt.tags];
    return this.tagger(typeof prompt === 'string' ? prompt : prompt.text);
  }

  /** The first rubric covering any of `tags`, or null. */
  rubricFor(tags: readonly string[]): Rubric | null {
    return this.config.rubrics.find((r) => r.covers.some((t) => tags.includes(t))) ?? null;
  }

  /** Class and reward of `response` to `prompt`, with whichever grader the rubric uses. */
  async rewardFor(prompt: PromptInput, response: string): Promise<RuleReward> {
    const text = typeof prompt === 'string' ? prompt : prompt.text;
    const rubric = this.rubricFor(this.tagsOf(prompt));
    if (!rubric) return { class: null, reward: 0, rubric: null, grader: null };
    if (this.graderOf(rubric) === 'program') return this.programReward(rubric, text, response);
    const g = await modelGrade(this.opts.model!, rubric, this.config.classes, text, response);
    return {
      class: g.class, rubric: rubric.id, grader: 'model', detail: g,
      reward: g.class === null ? this.config.unparsedReward : rubric.rewards[g.class],
    };
  }

  /** Synchronous `rewardFor` with the program grader (whatever the config says). */
  rewardForSync(prompt: PromptInput, response: string): RuleReward {
    const text = typeof prompt === 'string' ? prompt : prompt.text;
    const rubric = this.rubricFor(this.tagsOf(prompt));
    if (!rubric) return { class: null, reward: 0, rubric: null, grader: null };
    return this.programReward(rubric, text, response);
  }

  /** Program-grader classification of a response, given whether its prompt is disallowed. */
  classify(prompt: PromptInput, response: string): ProgramGrade {
    const tags = this.tagsOf(prompt);
    return programGrade(this.config.program, response, { disallowed: this.isDisallowed(tags), prompt: typeof prompt === 'string' ? prompt : prompt.text });
  }

  private programReward(rubric: Rubric, prompt: string, response: string): RuleReward {
    const g = programGrade(this.config.program, response, { disallowed: rubric.covers.includes('disallowed'), prompt });
    return { class: g.class, reward: rubric.rewards[g.class], rubric: rubric.id, grader: 'program', detail: g };
  }

  private isDisallowed(tags: readonly string[]): boolean {
    const r = this.rubricFor(tags);
    return r ? r.covers.includes('disallowed') : tags.includes('disallowed');
  }

  private graderOf(r: Rubric): 'program' | 'model' {
    return this.opts.grader ?? r.grader ?? this.config.grader;
  }
}

/** A tagger from the config's `tagging` rules: the tag of the first rule with a matching pattern. */
export function ruleTagger(config: RubricConfig): Tagger {
  return (prompt) => {
    for (const rule of config.tagging) if (rule.patterns.some((p) => p.test(prompt))) return [rule.tag];
    return [];
  };
}

/** A tagger that looks prompts up exactly (e.g. the generated eval set), falling back to `fallback`. */
export function indexTagger(records: readonly { prompt: string; tags: readonly string[] }[], fallback?: Tagger): Tagger {
  const map = new Map(records.map((r) => [r.prompt, [...r.tags]]));
  return (prompt) => map.get(prompt) ?? (fallback ? fallback(prompt) : []);
}
