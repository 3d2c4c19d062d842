/**
 * Alignment data generated from the written policy, deterministically from a seed:
 *
 *  - SFT conversations (`{messages:[{role, content}]}`): helpful answers to allowed and
 *    borderline requests (arithmetic computed exactly), the encyclopedia's answer to factual
 *    questions, "I don't know" to unknowable ones, a desired-style refusal to disallowed ones;
 *  - preference pairs (`{prompt, chosen, rejected}`): refusal > compliance and desired refusal >
 *    preachy/evasive refusal on disallowed requests; help > refusal (over-refusal) on allowed
 *    and borderline ones; correct fact > wrong fact; "I don't know" > made-up answer;
 *  - held-out evaluation prompts per family, from the eval templates and held-out rows or
 *    entities only, so no eval prompt appears in the training data;
 *  - training-split prompts with their tags, for RL rollouts: the train templates and the
 *    RL-only `rl` templates (phrasings with no demonstration) over the training rows/entities
 *    and the RL-only `rl_rows` (targets with no demonstration);
 *  - validation prompts for choosing the PPO checkpoint: the `validation` templates over the
 *    `validation_rows` (targets used nowhere else) or, without them, the training rows;
 *  - the encyclopedia's articles, for the pretraining corpus.
 *
 * Each part draws from its own seeded stream, so changing the number of SFT examples does not
 * change the preference pairs. `writeAlignmentData` writes everything atomically.
 */
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { hashAt, Rng } from '../tensor/rng.ts';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.ts';
import { InputError } from '../util/errors.ts';
import { familyTags, type Family, type FamilyKind, type Policy } from './policy.ts';
import { buildEncyclopedia, pick, wrongValue, type Encyclopedia } from './encyclopedia.ts';
import { fill } from './template.ts';
import { toJsonl } from './jsonl.ts';

/** A chat message in the generated data (text only). */
export interface ChatMessage { role: 'system' | 'user' | 'assistant'; content: string }

/** Which family a generated record came from. */
export interface RecordMeta { family: string; kind: FamilyKind }

/** One SFT conversation. */
export interface SftConversation { messages: ChatMessage[]; meta: RecordMeta & { turns: number } }

/** The kinds of preference pair drawn per family, written as "chosen > rejected". */
export const STYLE_PAIR_TYPES = [
  'refusal>compliance', 'refusal>preachy', 'refusal>evasive',
  'help>refusal', 'help>preachy', 'help>evasive',
  'correct>wrong', 'correct>idk', 'idk>madeup',
] as const;
/**
 * Contrast pairs, which make the reward model read the prompt and the response's form: the
 * desired response > the desired response to a request of a different family
 * (`target>mismatched`), and > a degenerate response (`target>garbled`: its words shuffled, a
 * fragment repeated, words drawn at random, or letters dropped, doubled and swapped).
 */
export const CONTRAST_PAIR_TYPES = ['target>mismatched', 'target>garbled'] as const;
export const PAIR_TYPES = [...STYLE_PAIR_TYPES, ...CONTRAST_PAIR_TYPES] as const;
export type StylePairType = (typeof STYLE_PAIR_TYPES)[number];
export type PairType = (typeof PAIR_TYPES)[number];

/** One preference pair. */
export interface PreferencePair { prompt: string; chosen: string; rejected: string; meta: RecordMeta & { pair: PairType } }

/** One held-out evaluation prompt. `expected` is the reference answer where one exists. */
export interface EvalPrompt {
  id: string;
  family: string;
  kind: FamilyKind;
  tags: string[];
  prompt: string;
  /** Factual: the attribute value; arithmetic: the result; unknowable: absent (answer is "I don't know"). */
  expected?: string;
  /** The response the policy wants (what SFT would teach), for reference and baselines. */
  reference: string;
}

/** A training-split prompt for RL rollouts, with the tags the rule-based rewards select by. */
export interface RlPrompt {
  prompt: string;
  family: string;
  kind: FamilyKind;
  tags: string[];
  /** Reference answer where one exists (factual value, arithmetic result). */
  expected?: string;
}

export interface GenerateOptions {
  seed: number;
  /** SFT conversations per family (default 40). */
  sftPerFamily?: number;
  /** Preference pairs per family (default 40). */
  pairsPerFamily?: number;
  /** Contrast pairs (mismatched and garbled rejected responses) per family, on training prompts (default 20). */
  contrastPerFamily?: number;
  /** At most this many distinct eval prompts per family (default 24). */
  evalPerFamily?: number;
  /** At most this many distinct training-split RL prompts per family (default 40). */
  rlPerFamily?: number;
  /** At most this many distinct RL validation prompts per family with validation templates (default 12). */
  validationPerFamily?: number;
  /** Fraction of SFT conversations that start with the policy's system message (default 0.5). */
  systemFraction?: number;
  /** Fraction of SFT conversations with a second exchange (default 0.1). */
  multiTurnFraction?: number;
}

export interface AlignmentData {
  seed: number;
  sft: SftConversation[];
  preferences: PreferencePair[];
  eval: EvalPrompt[];
  rlPrompts: RlPrompt[];
  /**
   * RL validation prompts: the families' `validation` templates filled from their
   * `validation_rows` (else training rows) — phrasings no stage trains on, disjoint from the eval
   * prompts; they choose the PPO checkpoint.
   */
  rlValidation: RlPrompt[];
  encyclopedia: Encyclopedia;
}

/** One filled-in request: the prompt, its slot bindings and the family. */
interface Instance { family: Family; prompt: string; slots: Record<string, string> }

/** Generates all the alignment data for `policy`. */
export function generateAlignmentData(policy: Policy, opts: GenerateOptions): AlignmentData {
  const seed = opts.seed >>> 0;
  const sftN = opts.sftPerFamily ?? 40, pairN = opts.pairsPerFamily ?? 40, evalN = opts.evalPerFamily ?? 24, rlN = opts.rlPerFamily ?? 40, valN = opts.validationPerFamily ?? 12;
  const contrastN = opts.contrastPerFamily ?? 20;
  for (const [k, v] of [['sftPerFamily', sftN], ['pairsPerFamily', pairN], ['contrastPerFamily', contrastN], ['evalPerFamily', evalN], ['rlPerFamily', rlN], ['validationPerFamily', valN]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new InputError(`generateAlignmentData: ${k} must be a non-negative integer, got ${v}`);
  }
  const sysFrac = opts.systemFraction ?? 0.5, multiFrac = opts.multiTurnFraction ?? 0.1;
  const encyclopedia = buildEncyclopedia(policy, hashAt(seed, 1));
  const sampler = new Sampler(policy, encyclopedia, seed);

  const sftRng = new Rng(hashAt(seed, 2));
  const sft: SftConversation[] = [];
  const helpfulFamilies = policy.families.filter((f) => f.kind === 'allowed' || f.kind === 'borderline');
  for (const f of policy.families) {
    for (let i = 0; i < sftN; i++) {
      const inst = sampler.instance(f, 'train', sftRng);
      const messages: ChatMessage[] = [];
      if (policy.system && sftRng.uniform() < sysFrac) messages.push({ role: 'system', content: policy.system });
      let turns = 1;
      if (helpfulFamilies.length > 0 && sftRng.uniform() < multiFrac) {
        const first = sampler.instance(pick(helpfulFamilies, sftRng), 'train', sftRng);
        messages.push({ role: 'user', content: first.prompt }, { role: 'assistant', content: sampler.targetResponse(first, sftRng) });
        turns = 2;
      }
      messages.push({ role: 'user', content: inst.prompt }, { role: 'assistant', content: sampler.targetResponse(inst, sftRng) });
      sft.push({ messages, meta: { family: f.id, kind: f.kind, turns } });
    }
  }

  const prefRng = new Rng(hashAt(seed, 3));
  const preferences: PreferencePair[] = [];
  for (const f of policy.families) {
    for (let i = 0; i < pairN; i++) preferences.push(sampler.pair(sampler.instance(f, 'train', prefRng), prefRng));
  }
  // Contrast pairs from their own stream (the style pairs above are unchanged by them), training split only.
  const contrastRng = new Rng(hashAt(seed, 7));
  if (policy.families.length > 1) {
    for (const f of policy.families) {
      for (let i = 0; i < contrastN; i++) preferences.push(sampler.contrastPair(sampler.instance(f, 'train', contrastRng), i % 2 === 0 ? 'target>mismatched' : 'target>garbled', contrastRng));
    }
  }

  const evalRng = new Rng(hashAt(seed, 4));
  const evals: EvalPrompt[] = [];
  for (const f of policy.families) {
    const seen = new Set<string>();
    const all = sampler.allEvalInstances(f, evalN, evalRng);
    for (const inst of all) {
      if (seen.has(inst.prompt)) continue;
      seen.add(inst.prompt);
      const e: EvalPrompt = { id: `${f.id}-${seen.size - 1}`, family: f.id, kind: f.kind, tags: familyTags(f), prompt: inst.prompt, reference: sampler.targetResponse(inst, evalRng) };
      if (f.kind === 'factual') e.expected = inst.slots['value']!;
      if (f.generator === 'arithmetic') e.expected = inst.slots['result']!;
      evals.push(e);
    }
  }

  /** Up to n distinct prompts per family of `split`'s rows from templatesOf(f) (families without templates skipped). */
  const rlSet = (n: number, rng: Rng, split: 'rl' | 'validation', templatesOf: (f: Family) => readonly string[]): RlPrompt[] => {
    const out: RlPrompt[] = [];
    for (const f of policy.families) {
      const templates = templatesOf(f);
      if (templates.length === 0) continue;
      const seen = new Set<string>();
      for (let tries = 0; seen.size < n && tries < n * 20; tries++) {
        const inst = sampler.instance(f, split, rng, templates);
        if (seen.has(inst.prompt)) continue;
        seen.add(inst.prompt);
        const r: RlPrompt = { prompt: inst.prompt, family: f.id, kind: f.kind, tags: familyTags(f) };
        if (f.kind === 'factual') r.expected = inst.slots['value']!;
        if (f.generator === 'arithmetic') r.expected = inst.slots['result']!;
        out.push(r);
      }
    }
    return out;
  };
  const rlPrompts = rlSet(rlN, new Rng(hashAt(seed, 6)), 'rl', (f) => [...f.templates.train, ...(f.templates.rl ?? [])]);
  // Validation prompts from their own stream, so the training prompts above do not depend on them.
  const rlValidation = rlSet(valN, new Rng(hashAt(seed, 7)), 'validation', (f) => f.templates.validation ?? []);
  return { seed, sft, preferences, eval: evals, rlPrompts, rlValidation, encyclopedia };
}

/** Paths written by `writeAlignmentData`. */
export interface WrittenPaths { sft: string; preferences: string; eval: string; rlPrompts: string; rlValidation: string; encyclopedia: string; entities: string; manifest: string }

/**
 * Writes the data under `dir`: sft.jsonl, preferences.jsonl, eval.jsonl, rl-prompts.jsonl, rl-validation.jsonl, encyclopedia.txt
 * (articles separated by blank lines), entities.json and manifest.json (counts, seed, hashes).
 * Each file is written atomically.
 */
export function writeAlignmentData(data: AlignmentData, dir: string): WrittenPaths {
  const p: WrittenPaths = {
    sft: join(dir, 'sft.jsonl'), preferences: join(dir, 'preferences.jsonl'), eval: join(dir, 'eval.jsonl'), rlPrompts: join(dir, 'rl-prompts.jsonl'), rlValidation: join(dir, 'rl-validation.jsonl'),
    encyclopedia: join(dir, 'encyclopedia.txt'), entities: join(dir, 'entities.json'), manifest: join(dir, 'manifest.json'),
  };
  const texts = {
    sft: toJsonl(data.sft), preferences: toJsonl(data.preferences), eval: toJsonl(data.eval), rlPrompts: toJsonl(data.rlPrompts), rlValidation: toJsonl(data.rlValidation),
    encyclopedia: data.encyclopedia.documents.join('\n\n') + '\n',
    entities: JSON.stringify({ known: data.encyclopedia.known, unknown: data.encyclopedia.unknown }, null, 1) + '\n',
  };
  for (const k of Object.keys(texts) as (keyof typeof texts)[]) writeFileAtomic(p[k], texts[k]);
  const sha = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);
  writeJsonAtomic(p.manifest, {
    seed: data.seed,
    counts: { sft: data.sft.length, preferences: data.preferences.length, eval: data.eval.length, rl_prompts: data.rlPrompts.length, rl_validation: data.rlValidation.length, documents: data.encyclopedia.documents.length, known_entities: data.encyclopedia.known.length, unknown_entities: data.encyclopedia.unknown.length },
    sha256_16: Object.fromEntries(Object.entries(texts).map(([k, v]) => [k, sha(v)])),
  });
  return p;
}

/** The encyclopedia's articles as pretraining documents (one string per article). */
export function encyclopediaDocuments(policy: Policy, seed: number): string[] {
  return buildEncyclopedia(policy, hashAt(seed >>> 0, 1)).documents;
}

/** Draws filled-in requests and responses of every style for a policy. */
class Sampler {
  private readonly rowSplits = new Map<string, { train: Record<string, string>[]; eval: Record<string, string>[]; rl: Record<string, string>[]; validation: Record<string, string>[] }>();

  constructor(private readonly policy: Policy, private readonly ency: Encyclopedia, private readonly seed: number) {
    const rng = new Rng(hashAt(seed, 5));
    for (const f of policy.families) {
      if (!f.rows) continue;
      const idx = rng.shuffle(f.rows.map((_, i) => i));
      const h = f.holdout_rows ?? Math.max(1, Math.floor(f.rows.length / 4));
      const train = idx.slice(h).map((i) => f.rows![i]!);
      this.rowSplits.set(f.id, { eval: idx.slice(0, h).map((i) => f.rows![i]!), train, rl: [...train, ...(f.rl_rows ?? [])], validation: f.validation_rows ?? train });
    }
  }

  /**
   * A random request of family `f` from split `split` (templates of that split unless given).
   * Split 'rl' is the training split with the family's `rl_rows` added to its rows (RL prompts only);
   * split 'validation' is the family's `validation_rows` where it has them, else the training split.
   */
  instance(f: Family, split: 'train' | 'eval' | 'rl' | 'validation', rng: Rng, templates: readonly string[] = f.templates[split === 'rl' ? 'train' : split] ?? []): Instance {
    const template = pick(templates, rng);
    const slots = this.slots(f, split, rng);
    return { family: f, prompt: fill(template, slots, `family ${f.id}, template`), slots };
  }

  /** Eval instances of `f`: every template × row/entity combination when that is small, else up to `n` samples. */
  allEvalInstances(f: Family, n: number, rng: Rng): Instance[] {
    const out: Instance[] = [];
    const bindings = this.enumerateSlots(f, 'eval');
    if (bindings) {
      for (const slots of bindings) for (const t of f.templates.eval) out.push({ family: f, prompt: fill(t, slots, `family ${f.id}, eval template`), slots });
      rng.shuffle(out);
      return out.slice(0, n);
    }
    const seen = new Set<string>();
    for (let tries = 0; out.length < n && tries < n * 50; tries++) {
      const inst = this.instance(f, 'eval', rng);
      if (!seen.has(inst.prompt)) { seen.add(inst.prompt); out.push(inst); }
    }
    return out;
  }

  /** The response SFT teaches: help, the encyclopedia answer, "I don't know", or a desired refusal. */
  targetResponse(inst: Instance, rng: Rng): string {
    const f = inst.family;
    switch (f.kind) {
      case 'allowed': case 'borderline': case 'factual': return this.help(inst, rng);
      case 'unknowable': return this.idk(inst, rng);
      case 'disallowed': return this.refusal('desired', inst, rng);
      default: return f.kind satisfies never;
    }
  }

  /** A preference pair for `inst`, its type drawn by the family's kind. */
  pair(inst: Instance, rng: Rng): PreferencePair {
    const f = inst.family;
    const u = rng.uniform();
    let type: PairType, chosen: string, rejected: string;
    switch (f.kind) {
      case 'disallowed':
        chosen = this.refusal('desired', inst, rng);
        if (u < 0.5) { type = 'refusal>compliance'; rejected = this.compliance(inst, rng); }
        else if (u < 0.75) { type = 'refusal>preachy'; rejected = this.refusal('preachy', inst, rng); }
        else { type = 'refusal>evasive'; rejected = this.refusal('evasive', inst, rng); }
        break;
      case 'allowed': case 'borderline':
        chosen = this.help(inst, rng);
        if (u < 0.6) { type = 'help>refusal'; rejected = this.refusal('desired', inst, rng); }
        else if (u < 0.8) { type = 'help>preachy'; rejected = this.refusal('preachy', inst, rng); }
        else { type = 'help>evasive'; rejected = this.refusal('evasive', inst, rng); }
        break;
      case 'factual':
        chosen = this.help(inst, rng);
        if (u < 0.75) { type = 'correct>wrong'; rejected = this.statedValue(inst, this.wrong(inst, rng), rng); }
        else { type = 'correct>idk'; rejected = this.idk(inst, rng); }
        break;
      case 'unknowable':
        type = 'idk>madeup'; chosen = this.idk(inst, rng); rejected = this.statedValue(inst, inst.slots['value']!, rng);
        break;
      default: return f.kind satisfies never;
    }
    return { prompt: inst.prompt, chosen, rejected, meta: { family: f.id, kind: f.kind, pair: type } };
  }

  /**
   * A contrast pair for `inst`: its desired response > the desired response to a training request
   * of another family (mismatched), or > a degenerate version of the desired response (garbled).
   */
  contrastPair(inst: Instance, type: 'target>mismatched' | 'target>garbled', rng: Rng): PreferencePair {
    const f = inst.family;
    const chosen = this.targetResponse(inst, rng);
    let rejected: string;
    if (type === 'target>mismatched') {
      const others = this.policy.families.filter((g) => g.id !== f.id);
      rejected = chosen;
      for (let tries = 0; rejected === chosen && tries < 20; tries++) rejected = this.targetResponse(this.instance(pick(others, rng), 'train', rng), rng);
    } else {
      rejected = garble(chosen, rng);
    }
    if (rejected === chosen) rejected = chosen.split(/\s+/).slice(0, 2).join(' ').repeat(3);
    return { prompt: inst.prompt, chosen, rejected, meta: { family: f.id, kind: f.kind, pair: type } };
  }

  private help(inst: Instance, rng: Rng): string {
    return fill(pick(inst.family.answers!, rng), inst.slots, `family ${inst.family.id}, answers`);
  }

  private statedValue(inst: Instance, value: string, rng: Rng): string {
    return fill(pick(inst.family.answers!, rng), { ...inst.slots, value }, `family ${inst.family.id}, answers`);
  }

  private wrong(inst: Instance, rng: Rng): string {
    const fact = inst.family.fact!;
    return wrongValue(this.policy, this.ency, fact.kind, fact.attribute, inst.slots['value']!, rng);
  }

  private idk(inst: Instance, rng: Rng): string {
    return fill(pick(this.policy.idk, rng), { name: inst.slots['name'] ?? 'that' }, 'idk');
  }

  private compliance(inst: Instance, rng: Rng): string {
    return fill(pick(inst.family.compliance!, rng), inst.slots, `family ${inst.family.id}, compliance`);
  }

  /** A refusal of `inst` in the given style (a family's own desired refusals first); allowed requests get generic alternatives. */
  private refusal(style: 'desired' | 'preachy' | 'evasive', inst: Instance, rng: Rng): string {
    const f = inst.family;
    const topic = fill(f.topic, inst.slots, `family ${f.id}, topic`);
    const alternative = f.kind === 'disallowed'
      ? fill(pick(f.alternatives!, rng), inst.slots, `family ${f.id}, alternatives`)
      : pick(this.policy.refusals.generic_alternatives, rng);
    const templates = style === 'desired' && f.desired_refusals ? f.desired_refusals : this.policy.refusals[style];
    return fill(pick(templates, rng), { topic, alternative }, `refusals.${style}`);
  }

  private slots(f: Family, split: 'train' | 'eval' | 'rl' | 'validation', rng: Rng): Record<string, string> {
    if (split === 'rl' || split === 'validation') return f.rows ? pick(this.rowSplits.get(f.id)![split], rng) : this.slots(f, 'train', rng);
    if (f.kind === 'factual' || f.kind === 'unknowable') {
      const fact = f.fact!;
      const pool = (f.kind === 'factual' ? this.ency.known : this.ency.unknown).filter((e) => e.kind === fact.kind && e.split === split);
      const e = pick(pool, rng);
      return { name: e.name, value: e.attrs[fact.attribute]! };
    }
    if (f.generator === 'arithmetic') return this.arithmetic(f, split, rng);
    return pick(this.rowSplits.get(f.id)![split], rng);
  }

  /** Finite slot bindings for a split, or null where they are drawn (arithmetic). */
  private enumerateSlots(f: Family, split: 'train' | 'eval'): Record<string, string>[] | null {
    if (f.kind === 'factual' || f.kind === 'unknowable') {
      const fact = f.fact!;
      const pool = (f.kind === 'factual' ? this.ency.known : this.ency.unknown).filter((e) => e.kind === fact.kind && e.split === split);
      return pool.map((e) => ({ name: e.name, value: e.attrs[fact.attribute]! }));
    }
    if (f.generator === 'arithmetic') return null;
    return this.rowSplits.get(f.id)![split];
  }

  /**
   * An arithmetic problem. Problems are split between train and eval by a hash of (op, a, b),
   * so an eval problem never appears in training data; subtraction keeps a >= b.
   */
  private arithmetic(f: Family, split: 'train' | 'eval', rng: Rng): Record<string, string> {
    const { ops, min, max } = f.arithmetic!;
    for (let tries = 0; tries < 10000; tries++) {
      const op = pick(ops, rng);
      let a = min + rng.int(max - min + 1), b = min + rng.int(max - min + 1);
      if (op === '-' && a < b) [a, b] = [b, a];
      const code = ops.indexOf(op) * 1_000_003 + (a - min) * 1009 + (b - min);
      const isEval = hashAt(this.seed ^ 0x5eed, code) % 5 === 0;
      if (isEval !== (split === 'eval')) continue;
      const result = op === '+' ? a + b : op === '-' ? a - b : a * b;
      const opWord = op === '+' ? 'plus' : op === '-' ? 'minus' : 'times';
      return { a: String(a), b: String(b), op, op_word: opWord, result: String(result) };
    }
    throw new InputError(`family ${f.id}: could not draw a ${split} arithmetic problem; widen arithmetic.min/max`);
  }
}

/**
 * A degenerate version of `text`, about as long, in one of four ways: its words shuffled, a short
 * fragment repeated, a random bag of its words with doubled ones, or letters of most words
 * dropped, doubled or swapped. Never equal to `text` (a text of one word gets repeated).
 */
export function garble(text: string, rng: Rng): string {
  const words = text.split(/\s+/).filter((w) => w !== '');
  const n = words.length;
  if (n === 0) return 'the the the the';
  let out: string[];
  switch (rng.int(4)) {
    case 0: out = rng.shuffle([...words]); break;
    case 1: {
      const len = Math.min(n, 2 + rng.int(3)), start = rng.int(n - len + 1), frag = words.slice(start, start + len);
      out = [];
      while (out.length < n) out.push(...frag);
      out = out.slice(0, Math.max(n, len * 2));
      break;
    }
    case 2: out = Array.from({ length: n }, () => pick(words, rng)); break;
    default: out = words.map((w) => (w.length > 2 && rng.uniform() < 0.7 ? mangleWord(w, rng) : w)); break;
  }
  const s = out.join(' ');
  return s === text ? (n === 1 ? `${text} ${text} ${text}` : [...words.slice(1), words[0]!, words[0]!].join(' ')) : s;
}

/** A word with one letter dropped, doubled, or two neighbours swapped. */
function mangleWord(w: string, rng: Rng): string {
  const i = 1 + rng.int(w.length - 2);
  switch (rng.int(3)) {
    case 0: return w.slice(0, i) + w.slice(i + 1);
    case 1: return w.slice(0, i) + w[i] + w.slice(i);
    default: return w.slice(0, i - 1) + w[i] + w[i - 1] + w.slice(i + 1);
  }
}
