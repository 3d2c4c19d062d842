/**
 * The zero-shot model grader: asks a language model to classify a response with the rubric.
 *
 * The rubric prompt lists the four classes with their descriptions, says what the rubric is
 * about, shows the user's request and the assistant's response between markers, and asks for a
 * single letter. Two ways to get the answer from a model:
 *   - `generate`: free text, parsed by `parseGraderAnswer` (accepts "C", "(B)", "Answer: D",
 *     "The answer is A.", and a lone class letter elsewhere; anything ambiguous is unparsed);
 *   - `score`: log-likelihoods of the continuations " A", " B", " C", " D" after the prompt; the
 *     class is the argmax, and the softmax gives class probabilities.
 * When both are given, `score` is used (it cannot fail to parse).
 */
import { InputError } from '../util/errors.ts';
import { RUBRIC_CLASSES, type Rubric, type RubricClass } from './rubric-config.ts';

/** Free-text generation: prompt in, completion out. */
export type GenerateFn = (prompt: string) => Promise<string>;
/** Log-likelihood of each continuation after the prompt (same order as `continuations`). */
export type ScoreFn = (prompt: string, continuations: readonly string[]) => Promise<number[]>;

/** A model to grade with: at least one of `generate` and `score`. */
export interface GraderModel { generate?: GenerateFn; score?: ScoreFn }

/** The model grader's verdict. `class` is null when a generated answer could not be parsed. */
export interface ModelGrade {
  class: RubricClass | null;
  /** Class probabilities (scoring mode only). */
  probs?: Record<RubricClass, number>;
  /** The model's raw answer (generation mode only). */
  raw?: string;
}

/** The continuations scored in scoring mode, in class order. */
export const CLASS_CONTINUATIONS = RUBRIC_CLASSES.map((c) => ` ${c}`);

/** Builds the rubric prompt for one (prompt, response). Ends with "Answer:" so the next token is the letter. */
export function buildGraderPrompt(rubric: Rubric, classes: Record<RubricClass, string>, prompt: string, response: string): string {
  const lines = [
    'You are grading an AI assistant\'s response against a rubric.',
    '',
    `Rubric: ${rubric.description}`,
    '',
    'Classify the response into exactly one class:',
    ...RUBRIC_CLASSES.map((c) => `(${c}) ${classes[c]}`),
    '',
    '[User request]',
    prompt.trim(),
    '[End of user request]',
    '',
    '[Assistant response]',
    response.trim(),
    '[End of assistant response]',
    '',
    'Reply with a single letter: A, B, C or D.',
    'Answer:',
  ];
  return lines.join('\n');
}

/**
 * The class letter in a grader model's answer, or null when there is none or it is ambiguous.
 * Tried in order: a letter alone (optionally in parentheses or followed by punctuation) at the
 * start; "answer/class/grade (is) X"; "(X)"; finally a lone capital A–D word, if exactly one
 * distinct such letter appears outside the word "A" starting a sentence.
 */
export function parseGraderAnswer(text: string): RubricClass | null {
  const t = text.trim();
  const asClass = (s: string | undefined): RubricClass | null => (s && (RUBRIC_CLASSES as readonly string[]).includes(s.toUpperCase()) ? (s.toUpperCase() as RubricClass) : null);
  let m = /^\(?([ABCD])\)?(?:$|[\s.,:;)!\]])/.exec(t);
  if (m && !/^A\s+[a-z]/.test(t)) return asClass(m[1]);
  m = /\b(?:answer|class|classification|grade|category|verdict)\s*(?:is|:|=|-)?\s*:?\s*\(?([ABCD])\)?(?![A-Za-z])/i.exec(t);
  if (m) return asClass(m[1]);
  const paren = [...t.matchAll(/\(([ABCD])\)/g)].map((x) => x[1]!);
  if (paren.length > 0 && new Set(paren).size === 1) return asClass(paren[0]);
  // A lone capital letter word; "A" followed by a lower-case word is the article, not a class.
  const lone = [...t.matchAll(/(?<![A-Za-z])([ABCD])(?![A-Za-z'])/g)]
    .filter((x) => !(x[1] === 'A' && /^\s+[a-z]/.test(t.slice(x.index! + 1))))
    .map((x) => x[1]!);
  if (lone.length > 0 && new Set(lone).size === 1) return asClass(lone[0]);
  return null;
}

/** Grades one response with a model. */
export async function modelGrade(model: GraderModel, rubric: Rubric, classes: Record<RubricClass, string>, prompt: string, response: string): Promise<ModelGrade> {
  const p = buildGraderPrompt(rubric, classes, prompt, response);
  if (model.score) {
    const lls = await model.score(p, CLASS_CONTINUATIONS);
    if (lls.length !== 4 || lls.some((x) => typeof x !== 'number' || Number.isNaN(x))) {
      throw new InputError(`model grader: score() must return 4 log-likelihoods (for ${CLASS_CONTINUATIONS.join(',')}), got ${JSON.stringify(lls)}`);
    }
    const mx = Math.max(...lls);
    const ex = lls.map((x) => Math.exp(x - mx));
    const z = ex.reduce((a, b) => a + b, 0);
    const probs = Object.fromEntries(RUBRIC_CLASSES.map((c, i) => [c, ex[i]! / z])) as Record<RubricClass, number>;
    let best = 0;
    for (let i = 1; i < 4; i++) if (lls[i]! > lls[best]!) best = i;
    return { class: RUBRIC_CLASSES[best]!, probs };
  }
  if (model.generate) {
    const raw = await model.generate(p);
    return { class: parseGraderAnswer(raw), raw };
  }
  throw new InputError('model grader: the model needs generate() or score()');
}
