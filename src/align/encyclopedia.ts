/**
 * The synthetic encyclopedia: made-up entities (countries, people, devices …) with attributes,
 * generated deterministically from the policy and a seed, and written out as short articles
 * for the pretraining corpus. Factual questions in the alignment data are about these entities,
 * so their answers are in the pretraining text; "unknown" entities are invented the same way
 * but never written down, so questions about them can only be answered "I don't know".
 *
 * Known and unknown entities are each split into a training part (used in SFT and preference
 * data) and a held-out part (used only for evaluation prompts). Every name is unique across the
 * whole encyclopedia (entities and name-valued attributes such as capitals alike).
 */
import { Rng } from '../tensor/rng.ts';
import { InputError } from '../util/errors.ts';
import type { EntityKind, Policy, ValueSource } from './policy.ts';
import { fill } from './template.ts';

/** One made-up entity. `attrs` holds every attribute as text (years as decimal strings). */
export interface Entity {
  kind: string;
  name: string;
  attrs: Record<string, string>;
  /** true: written into the pretraining text; false: invented only, never written. */
  known: boolean;
  split: 'train' | 'eval';
}

/** The encyclopedia: entities and the pretraining articles about the known ones. */
export interface Encyclopedia {
  known: Entity[];
  unknown: Entity[];
  /** One article per string; `documents_per_entity` articles per known entity, shuffled. */
  documents: string[];
}

/** Builds the encyclopedia for `policy` from `seed`. Same inputs, same output. */
export function buildEncyclopedia(policy: Policy, seed: number): Encyclopedia {
  const enc = policy.encyclopedia;
  const rng = new Rng(seed);
  const names = new NameMaker(enc.syllables, rng);
  const order = kindOrder(enc.kinds);
  const knownByKind = new Map<string, Entity[]>();
  const unknownByKind = new Map<string, Entity[]>();

  for (const kind of order) {
    const make = (known: boolean, count: number, holdout: number): Entity[] => {
      const list: Entity[] = [];
      for (let i = 0; i < count; i++) {
        const attrs: Record<string, string> = {};
        for (const [a, src] of Object.entries(kind.attributes)) attrs[a] = drawValue(src, rng, names, knownByKind, `${kind.id}.${a}`);
        list.push({ kind: kind.id, name: names.make(kind.name_words), attrs, known, split: 'train' });
      }
      const idx = rng.shuffle(list.map((_, i) => i));
      for (const i of idx.slice(0, holdout)) list[i]!.split = 'eval';
      return list;
    };
    knownByKind.set(kind.id, make(true, enc.known_per_kind, enc.holdout_per_kind));
    unknownByKind.set(kind.id, make(false, enc.unknown_per_kind, enc.unknown_holdout_per_kind));
  }

  const known = enc.kinds.flatMap((k) => knownByKind.get(k.id)!);
  const unknown = enc.kinds.flatMap((k) => unknownByKind.get(k.id)!);
  const kinds = new Map(enc.kinds.map((k) => [k.id, k]));
  const documents: string[] = [];
  for (const e of known) {
    for (let d = 0; d < enc.documents_per_entity; d++) documents.push(article(kinds.get(e.kind)!, e, rng));
  }
  rng.shuffle(documents);
  return { known, unknown, documents };
}

/**
 * A value for `src` that differs from `actual`: a plausible wrong answer (another entity's
 * capital, another person, a different year). Used for made-up and wrong-fact answers.
 */
export function wrongValue(policy: Policy, ency: Encyclopedia, kindId: string, attribute: string, actual: string | null, rng: Rng): string {
  const kind = policy.encyclopedia.kinds.find((k) => k.id === kindId);
  const src = kind?.attributes[attribute];
  if (!kind || !src) throw new InputError(`encyclopedia: no attribute '${attribute}' on kind '${kindId}'`);
  let pool: string[];
  if ('values' in src) pool = src.values;
  else if ('ref' in src) pool = ency.known.filter((e) => e.kind === src.ref).map((e) => e.name);
  else if ('name' in src) pool = ency.known.filter((e) => e.kind === kindId).map((e) => e.attrs[attribute]!);
  else {
    const [lo, hi] = src.range;
    if (hi === lo) throw new InputError(`encyclopedia: ${kindId}.${attribute} has a one-value range; no wrong value exists`);
    for (;;) {
      const v = String(lo + rng.int(hi - lo + 1));
      if (v !== actual) return v;
    }
  }
  const others = pool.filter((v) => v !== actual);
  if (others.length === 0) throw new InputError(`encyclopedia: ${kindId}.${attribute} has no value other than '${actual}'`);
  return others[rng.int(others.length)]!;
}

/** One article about `e`: an intro sentence, then each attribute in a random order and wording. */
function article(kind: EntityKind, e: Entity, rng: Rng): string {
  const slots = { name: e.name, ...e.attrs };
  const parts = [fill(pick(kind.intro, rng), slots, `encyclopedia.kinds.${kind.id}.intro`)];
  const attrs = rng.shuffle(Object.keys(kind.attributes));
  for (const a of attrs) parts.push(fill(pick(kind.facts[a]!, rng), slots, `encyclopedia.kinds.${kind.id}.facts.${a}`));
  return parts.join(' ');
}

function drawValue(src: ValueSource, rng: Rng, names: NameMaker, knownByKind: Map<string, Entity[]>, where: string): string {
  if ('values' in src) return pick(src.values, rng);
  if ('range' in src) return String(src.range[0] + rng.int(src.range[1] - src.range[0] + 1));
  if ('name' in src) return names.make(1);
  const pool = knownByKind.get(src.ref);
  if (!pool || pool.length === 0) throw new InputError(`encyclopedia: ${where} refers to kind '${src.ref}', which has no entities yet`);
  return pick(pool, rng).name;
}

/** Kinds ordered so that a kind comes after every kind its attributes refer to. */
function kindOrder(kinds: readonly EntityKind[]): EntityKind[] {
  const byId = new Map(kinds.map((k) => [k.id, k]));
  const out: EntityKind[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (k: EntityKind, path: string[]): void => {
    const s = state.get(k.id);
    if (s === 'done') return;
    if (s === 'visiting') throw new InputError(`encyclopedia: attribute references form a cycle: ${[...path, k.id].join(' → ')}`);
    state.set(k.id, 'visiting');
    for (const src of Object.values(k.attributes)) if ('ref' in src) visit(byId.get(src.ref)!, [...path, k.id]);
    state.set(k.id, 'done');
    out.push(k);
  };
  for (const k of kinds) visit(k, []);
  return out;
}

/** Unique made-up names from syllables: first + up to max_middle middles + last. */
class NameMaker {
  private readonly used = new Set<string>();
  constructor(private readonly syl: Policy['encyclopedia']['syllables'], private readonly rng: Rng) {}

  /** A fresh name of `words` capitalised words, never returned before. */
  make(words: number): string {
    for (let attempt = 0; attempt < 10000; attempt++) {
      const parts: string[] = [];
      for (let w = 0; w < words; w++) parts.push(this.word());
      const name = parts.join(' ');
      // Also keep single words unique, so one entity's name is never a word of another's.
      if (this.used.has(name) || parts.some((p) => this.used.has(p))) continue;
      this.used.add(name);
      for (const p of parts) this.used.add(p);
      return name;
    }
    throw new InputError('encyclopedia.syllables: too few syllables to make enough unique names; add syllables or lower the entity counts');
  }

  private word(): string {
    let w = pick(this.syl.first, this.rng);
    const middles = this.rng.int(this.syl.max_middle + 1);
    for (let i = 0; i < middles; i++) w += pick(this.syl.middle, this.rng);
    w += pick(this.syl.last, this.rng);
    return w[0]!.toUpperCase() + w.slice(1).toLowerCase();
  }
}

/** A uniformly chosen element. */
export function pick<T>(xs: readonly T[], rng: Rng): T {
  if (xs.length === 0) throw new InputError('pick: empty list');
  return xs[rng.int(xs.length)]!;
}
