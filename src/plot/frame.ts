/**
 * The parts every chart shares: the plot box, gridlines with tick labels on each axis, axis
 * titles, the chart title and the legend.
 */
import type { Scale } from './ticks.ts';
import { esc, px, textWidth, tickText } from './svg.ts';

/** The rectangle data is drawn in, in pixels. */
export interface Box { left: number; top: number; right: number; bottom: number; }

export const TITLE_SIZE = 16;
export const LABEL_SIZE = 13;
export const TICK_SIZE = 11;
const GRID_MAJOR = '#d9d9d9';
const GRID_MINOR = '#f0f0f0';
const AXIS = '#333333';

/** Width the y tick labels need (for the left margin). */
export function yTickWidth(scale: Scale): number {
  let w = 0;
  for (const t of scale.ticks) if (t.label) w = Math.max(w, textWidth(/^1e/.test(t.label) ? `10${t.label.slice(2)}` : t.label, TICK_SIZE));
  return w;
}

/** Horizontal gridlines, y ticks and their labels. */
export function yAxis(scale: Scale, box: Box): string {
  const out: string[] = [];
  for (const t of scale.ticks) {
    const y = scale.map(t.value);
    if (y < box.top - 0.5 || y > box.bottom + 0.5) continue;
    out.push(`<line x1="${px(box.left)}" y1="${px(y)}" x2="${px(box.right)}" y2="${px(y)}" stroke="${t.major ? GRID_MAJOR : GRID_MINOR}" stroke-width="1"/>`);
    out.push(`<line x1="${px(box.left - (t.major ? 5 : 3))}" y1="${px(y)}" x2="${px(box.left)}" y2="${px(y)}" stroke="${AXIS}" stroke-width="1"/>`);
    if (t.label) out.push(`<text x="${px(box.left - 8)}" y="${px(y + TICK_SIZE * 0.35)}" font-size="${TICK_SIZE}" text-anchor="end" fill="${AXIS}">${tickText(t.label, TICK_SIZE)}</text>`);
  }
  return `<g class="y-axis">\n${out.join('\n')}\n</g>`;
}

/** Vertical gridlines, x ticks and their labels. */
export function xAxis(scale: Scale, box: Box): string {
  const out: string[] = [];
  for (const t of scale.ticks) {
    const x = scale.map(t.value);
    if (x < box.left - 0.5 || x > box.right + 0.5) continue;
    out.push(`<line x1="${px(x)}" y1="${px(box.top)}" x2="${px(x)}" y2="${px(box.bottom)}" stroke="${t.major ? GRID_MAJOR : GRID_MINOR}" stroke-width="1"/>`);
    out.push(`<line x1="${px(x)}" y1="${px(box.bottom)}" x2="${px(x)}" y2="${px(box.bottom + (t.major ? 5 : 3))}" stroke="${AXIS}" stroke-width="1"/>`);
    if (t.label) out.push(`<text x="${px(x)}" y="${px(box.bottom + 8 + TICK_SIZE)}" font-size="${TICK_SIZE}" text-anchor="middle" fill="${AXIS}">${tickText(t.label, TICK_SIZE)}</text>`);
  }
  return `<g class="x-axis">\n${out.join('\n')}\n</g>`;
}

/** The frame around the plot box. */
export function frame(box: Box): string {
  return `<rect class="frame" x="${px(box.left)}" y="${px(box.top)}" width="${px(box.right - box.left)}" height="${px(box.bottom - box.top)}" fill="none" stroke="${AXIS}" stroke-width="1"/>`;
}

/** Chart title (top centre) and the two axis titles. */
export function titles(width: number, box: Box, title: string, xLabel: string, yLabel: string, xLabelY: number): string {
  const cy = (box.top + box.bottom) / 2;
  return [
    `<text class="title" x="${px(width / 2)}" y="${px(TITLE_SIZE + 10)}" font-size="${TITLE_SIZE}" font-weight="bold" text-anchor="middle" fill="#111111">${esc(title)}</text>`,
    `<text class="x-label" x="${px((box.left + box.right) / 2)}" y="${px(xLabelY)}" font-size="${LABEL_SIZE}" text-anchor="middle" fill="${AXIS}">${esc(xLabel)}</text>`,
    `<text class="y-label" x="${px(LABEL_SIZE + 4)}" y="${px(cy)}" font-size="${LABEL_SIZE}" text-anchor="middle" fill="${AXIS}" transform="rotate(-90 ${px(LABEL_SIZE + 4)} ${px(cy)})">${esc(yLabel)}</text>`,
  ].join('\n');
}

/** One legend entry: its name, colour and how to draw its sample. */
export interface LegendEntry { name: string; color: string; kind: 'line' | 'points' | 'line+points' | 'bar' | 'dashed'; }

const LEGEND_ROW = 18;
const LEGEND_SAMPLE = 26;

/** Width the legend needs to the right of the plot box (0 when there is nothing to show). */
export function legendWidth(entries: LegendEntry[]): number {
  if (entries.length === 0) return 0;
  return LEGEND_SAMPLE + 14 + Math.max(...entries.map((e) => textWidth(e.name, TICK_SIZE + 1))) + 12;
}

/** The legend, drawn in a column starting at (x, y). */
export function legend(entries: LegendEntry[], x: number, y: number): string {
  const out: string[] = ['<g class="legend">'];
  entries.forEach((e, i) => {
    const cy = y + i * LEGEND_ROW + LEGEND_ROW / 2;
    const x0 = x, x1 = x + LEGEND_SAMPLE;
    if (e.kind === 'bar') out.push(`<rect x="${px(x0 + 6)}" y="${px(cy - 6)}" width="14" height="12" fill="${e.color}"/>`);
    if (e.kind === 'line' || e.kind === 'line+points') out.push(`<line x1="${px(x0)}" y1="${px(cy)}" x2="${px(x1)}" y2="${px(cy)}" stroke="${e.color}" stroke-width="2"/>`);
    if (e.kind === 'dashed') out.push(`<line x1="${px(x0)}" y1="${px(cy)}" x2="${px(x1)}" y2="${px(cy)}" stroke="${e.color}" stroke-width="1.5" stroke-dasharray="5 4"/>`);
    if (e.kind === 'points' || e.kind === 'line+points') out.push(`<circle cx="${px((x0 + x1) / 2)}" cy="${px(cy)}" r="3.5" fill="${e.color}" stroke="#ffffff" stroke-width="0.8"/>`);
    out.push(`<text x="${px(x1 + 8)}" y="${px(cy + 4)}" font-size="${TICK_SIZE + 1}" fill="#222222">${esc(e.name)}</text>`);
  });
  out.push('</g>');
  return out.join('\n');
}
