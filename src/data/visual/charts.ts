/**
 * Bar and line charts of 3–5 categories labelled A, B, C… with integer values 1–9, each value also
 * written above its bar or point. Light grid lines at 0, 3, 6 and 9 help reading the height.
 *
 * Answers: bar_tallest / line_highest → a category letter (the maximum is always unique);
 * bar_value / line_value → the value "1" … "9".
 * Compositional split: chart kind–colour pairs in CHART_HELDOUT never appear in train/heldout.
 */
import type { Rng } from '../../tensor/rng.ts';
import { COLORS, pick, intIn, svgDoc, f2, type Split, type SceneSpec } from './scene.ts';

export const CHART_TASKS = ['bar_tallest', 'bar_value', 'line_highest', 'line_value'] as const;
export type ChartTask = (typeof CHART_TASKS)[number];

export type ChartKind = 'bar' | 'line';
export const CHART_COLORS = ['blue', 'red', 'green', 'purple'] as const;
export type ChartColor = (typeof CHART_COLORS)[number];

/** Kind–colour pairs reserved for the compositional split. */
export const CHART_HELDOUT: readonly (readonly [ChartKind, ChartColor])[] = [
  ['bar', 'green'],
  ['line', 'red'],
];

export interface ChartScene {
  kind: ChartKind;
  color: ChartColor;
  labels: string[];
  values: number[];
  /** Category the question asks about (value questions), else null. */
  asked: string | null;
}

const LETTERS = ['A', 'B', 'C', 'D', 'E'];
const BASE = 82, TOP = 18, LEFT = 6, RIGHT = 98;
const yOf = (v: number) => BASE - ((BASE - TOP) * v) / 9;

/** Builds one chart question. */
export function chartSample(task: ChartTask, rng: Rng, split: Split): SceneSpec<ChartScene> {
  const kind: ChartKind = task.startsWith('bar') ? 'bar' : 'line';
  const colors = CHART_COLORS.filter((c) => CHART_HELDOUT.some(([k, cc]) => k === kind && cc === c) === (split === 'compositional'));
  const color = pick(rng, colors);
  const n = intIn(rng, 3, 5);
  const labels = LETTERS.slice(0, n);
  let values: number[];
  do {
    values = labels.map(() => intIn(rng, 1, 9));
  } while (values.filter((v) => v === Math.max(...values)).length !== 1);
  const slot = (RIGHT - LEFT) / n;
  const xOf = (i: number) => LEFT + slot * (i + 0.5);
  const fill = COLORS[color];
  let body = '';
  for (const g of [0, 3, 6, 9]) body += `<line x1="${LEFT}" x2="${RIGHT}" y1="${f2(yOf(g))}" y2="${f2(yOf(g))}" stroke="#d0d0d0" stroke-width="0.8"/>`;
  body += `<line x1="${LEFT}" x2="${RIGHT}" y1="${BASE}" y2="${BASE}" stroke="#000000" stroke-width="1.2"/>`;
  const label = (x: number, y: number, s: string, size: number) =>
    `<text x="${f2(x)}" y="${f2(y)}" font-family="sans-serif" font-size="${size}" font-weight="bold" text-anchor="middle" fill="#000000">${s}</text>`;
  if (kind === 'bar') {
    const w = slot * 0.62;
    values.forEach((v, i) => {
      body += `<rect x="${f2(xOf(i) - w / 2)}" y="${f2(yOf(v))}" width="${f2(w)}" height="${f2(BASE - yOf(v))}" fill="${fill}"/>`;
    });
  } else {
    body += `<polyline points="${values.map((v, i) => `${f2(xOf(i))},${f2(yOf(v))}`).join(' ')}" fill="none" stroke="${fill}" stroke-width="3"/>`;
    values.forEach((v, i) => { body += `<circle cx="${f2(xOf(i))}" cy="${f2(yOf(v))}" r="3.5" fill="${fill}"/>`; });
  }
  values.forEach((v, i) => {
    body += label(xOf(i), yOf(v) - 3.5, String(v), 11);
    body += label(xOf(i), 97, labels[i]!, 13);
  });
  const svg = svgDoc(body);
  if (task === 'bar_tallest' || task === 'line_highest') {
    const best = labels[values.indexOf(Math.max(...values))]!;
    const question = kind === 'bar' ? 'which bar is tallest?' : 'which point is highest?';
    return { svg, question, answer: best, scene: { kind, color, labels, values, asked: null } };
  }
  const i = rng.int(n);
  const question = kind === 'bar' ? `what is the value of ${labels[i]}?` : `what is the value at ${labels[i]}?`;
  return { svg, question, answer: String(values[i]), scene: { kind, color, labels, values, asked: labels[i]! } };
}

/**
 * Every question of the chart tasks that a chart answers: which bar (point) is tallest (highest)
 * when one value is the unique maximum, and the value of each category. For follow-up turns.
 */
export function chartQuestions(scene: ChartScene): { task: ChartTask; question: string; answer: string }[] {
  const out: { task: ChartTask; question: string; answer: string }[] = [];
  const bar = scene.kind === 'bar', max = Math.max(...scene.values);
  if (scene.values.filter((v) => v === max).length === 1) {
    out.push({ task: bar ? 'bar_tallest' : 'line_highest', question: bar ? 'which bar is tallest?' : 'which point is highest?', answer: scene.labels[scene.values.indexOf(max)]! });
  }
  scene.labels.forEach((l, i) => out.push({
    task: bar ? 'bar_value' : 'line_value', question: bar ? `what is the value of ${l}?` : `what is the value at ${l}?`, answer: String(scene.values[i]),
  }));
  return out;
}
