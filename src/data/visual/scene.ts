/**
 * Shared vocabulary, splits and seeding of the synthetic visual tasks.
 *
 * Every scene is drawn in a 100×100 SVG coordinate space and rendered at the requested pixel size,
 * so the same seed gives the same scene at 32, 48 or 64 pixels. Colours are few and far apart in
 * hue and brightness so they stay distinct after downscaling to 32×32.
 *
 * Seeding: sample `index` of task `task` in split `split` uses the generator seeded with
 * `hashAt(hashAt(seed, taskCode), 3 * index + splitCode)`. For a fixed first argument `hashAt` is a
 * bijection of the 32-bit index, so the three splits of one task never share a generator seed
 * (the held-out split is the training distribution with disjoint seeds).
 */
import { Rng, hashAt } from '../../tensor/rng.ts';
import { InputError } from '../../util/errors.ts';

/** Object colours of the shapes and caption tasks, with their fill. */
export const COLORS = {
  red: '#e02020',
  green: '#20a030',
  blue: '#2040e0',
  yellow: '#f0d000',
  purple: '#9030c0',
  gray: '#808080',
} as const;
export type Color = keyof typeof COLORS;
export const COLOR_NAMES = Object.keys(COLORS) as Color[];

export const SHAPES = ['circle', 'square', 'triangle'] as const;
export type Shape = (typeof SHAPES)[number];

export const SIZES = ['big', 'small'] as const;
export type Size = (typeof SIZES)[number];

/**
 * Colour–shape pairs that never appear in the train or heldout splits of the shapes and caption
 * tasks; every compositional sample asks about one of them. Each colour and each shape still
 * appears in training with the other shapes/colours.
 */
export const HELDOUT_PAIRS: readonly (readonly [Color, Shape])[] = [
  ['red', 'triangle'],
  ['green', 'square'],
  ['blue', 'circle'],
];

export function isHeldoutPair(color: Color, shape: Shape): boolean {
  return HELDOUT_PAIRS.some(([c, s]) => c === color && s === shape);
}

export const SPLITS = ['train', 'heldout', 'compositional'] as const;
export type Split = (typeof SPLITS)[number];

export const FAMILIES = ['shapes', 'text', 'charts', 'captions'] as const;
export type Family = (typeof FAMILIES)[number];

/** The generator for one sample (see the module comment). */
export function sampleRng(seed: number, taskCode: number, split: Split, index: number): Rng {
  if (!Number.isSafeInteger(index) || index < 0 || index >= 0x55555555) throw new InputError(`visual sample index must be an integer in [0, ${0x55555555}), got ${index}`);
  return new Rng(hashAt(hashAt(seed >>> 0, taskCode), 3 * index + SPLITS.indexOf(split)));
}

/** A question about a scene, before rendering. */
export interface SceneSpec<S = unknown> {
  /** SVG source, 100×100 user units; `renderSvg` sets the pixel size. */
  svg: string;
  question: string;
  answer: string;
  /** The parameters the scene was drawn from (for tests and debugging). */
  scene: S;
}

/** Uniform pick from a list. */
export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

/** Integer in [lo, hi]. */
export function intIn(rng: Rng, lo: number, hi: number): number {
  return lo + rng.int(hi - lo + 1);
}

/** Number with 2 decimals (keeps the SVG small and exact). */
export function f2(x: number): string {
  return (Math.round(x * 100) / 100).toString();
}

/** Wraps SVG content in a document with a white background. */
export function svgDoc(body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100" width="100" height="100"><rect width="100" height="100" fill="#ffffff"/>${body}</svg>`;
}

/** Escapes text for SVG content. */
export function xmlText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
