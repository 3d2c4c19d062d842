/**
 * Rendered text: a 4-digit number or a short word in one of three font families (the generic
 * 'sans-serif', 'serif' and 'monospace', which fontconfig maps to installed fonts — DejaVu here),
 * regular or bold, at a varied size and position, in a dark colour.
 *
 * Answers: number → the 4 digits ("1000" … "9999"); word → one of TEXT_WORDS.
 * Compositional split: font–colour pairs in TEXT_HELDOUT never appear in train/heldout.
 */
import type { Rng } from '../../tensor/rng.ts';
import { pick, intIn, svgDoc, f2, xmlText, type Split, type SceneSpec } from './scene.ts';

export const FONTS = ['sans-serif', 'serif', 'monospace'] as const;
export type Font = (typeof FONTS)[number];

export const TEXT_COLORS = { black: '#000000', darkred: '#b00000', darkblue: '#0030b0', darkgreen: '#006a20' } as const;
export type TextColor = keyof typeof TEXT_COLORS;

/** Font–colour pairs reserved for the compositional split. */
export const TEXT_HELDOUT: readonly (readonly [Font, TextColor])[] = [
  ['serif', 'darkred'],
  ['monospace', 'darkblue'],
  ['sans-serif', 'darkgreen'],
];

/** The words of the word task (three letters, so they stay large at low resolution). */
export const TEXT_WORDS = ['cat', 'dog', 'sun', 'car', 'box', 'cup', 'hat', 'pen', 'map', 'bus', 'fox', 'egg', 'key', 'owl', 'bed', 'toy'] as const;

export const TEXT_TASKS = ['number', 'word'] as const;
export type TextTask = (typeof TEXT_TASKS)[number];

export interface TextScene {
  text: string;
  font: Font;
  bold: boolean;
  color: TextColor;
  /** Font size and the centre of the baseline, in 100×100 units. */
  fontSize: number;
  x: number;
  y: number;
}

/**
 * Ink width per character in em, measured on DejaVu at the widest case of each task (digits: "0000";
 * words: "map"), rounded up. The font size is then drawn in [0.75, 1] × the largest size that fits
 * in 94 units, capped at MAX_SIZE, and rounded down to half a unit, so text is as big as the image
 * allows and never clipped.
 */
const INK_EM: Record<TextTask, Record<Font, [normal: number, bold: number]>> = {
  number: { 'sans-serif': [0.61, 0.68], serif: [0.61, 0.68], monospace: [0.58, 0.58] },
  word: { 'sans-serif': [0.70, 0.78], serif: [0.71, 0.79], monospace: [0.59, 0.59] },
};
const MAX_SIZE: Record<TextTask, number> = { number: 40, word: 44 };

function isHeld(font: Font, color: TextColor): boolean {
  return TEXT_HELDOUT.some(([f, c]) => f === font && c === color);
}

/** Builds one text-reading question. */
export function textSample(task: TextTask, rng: Rng, split: Split): SceneSpec<TextScene> {
  const combos: [Font, TextColor][] = [];
  for (const f of FONTS) for (const c of Object.keys(TEXT_COLORS) as TextColor[]) if (isHeld(f, c) === (split === 'compositional')) combos.push([f, c]);
  const [font, color] = pick(rng, combos);
  const bold = rng.uniform() < 0.5;
  const text = task === 'number' ? String(intIn(rng, 1000, 9999)) : pick(rng, TEXT_WORDS);
  const em = INK_EM[task][font][bold ? 1 : 0];
  const hi = Math.min(MAX_SIZE[task], 94 / (text.length * em));
  // Sizes come in steps of half a unit (a quarter pixel at 48 px): the text renderer keeps a
  // font per size, and a new size per image made text scenes 7× as costly to render.
  const fontSize = Math.max(0.5, Math.floor(2 * hi * (0.75 + 0.25 * rng.uniform())) / 2);
  const half = (text.length * em * fontSize) / 2;
  const x = 3 + half + rng.uniform() * Math.max(0, 94 - 2 * half);
  const ascent = 0.77 * fontSize, descent = 0.23 * fontSize; // measured: 0.76 and at most 0.22
  const y = 4 + ascent + rng.uniform() * Math.max(0, 92 - ascent - descent);
  const svg = svgDoc(`<text x="${f2(x)}" y="${f2(y)}" font-family="${font}" font-size="${f2(fontSize)}"${bold ? ' font-weight="bold"' : ''} text-anchor="middle" fill="${TEXT_COLORS[color]}">${xmlText(text)}</text>`);
  const question = task === 'number' ? 'what number is written?' : 'what word is written?';
  return { svg, question, answer: text, scene: { text, font, bold, color, fontSize, x, y } };
}
