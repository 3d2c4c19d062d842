/**
 * Grouped bar charts (benchmark ratios, per-task scores) as SVG text.
 *
 *   barChart({ title: 'Accuracy', xLabel: 'task', yLabel: 'accuracy', categories: ['a', 'b'],
 *     groups: [{ name: 'lumen', values: [0.5, 0.7] }, { name: 'peer', values: [0.6, 0.65] }] });
 */
import { InputError } from '../util/errors.ts';
import { makeScale } from './ticks.ts';
import { colorAt, esc, px, svgOpen, textWidth } from './svg.ts';
import { checkDomain, checkSize, checkValues } from './validate.ts';
import { frame, legend, legendWidth, titles, yAxis, yTickWidth, LABEL_SIZE, TICK_SIZE, type Box, type LegendEntry } from './frame.ts';

/** Bars: one cluster per category, one bar per group inside it. The y axis always includes 0 unless yDomain is set. */
export interface BarSpec {
  title: string; xLabel: string; yLabel: string;
  categories: string[];
  groups: { name: string; values: number[]; color?: string }[];
  width?: number; height?: number; yDomain?: [number, number];
}

function validate(spec: BarSpec): void {
  const t = spec.title;
  if (!Array.isArray(spec.categories) || spec.categories.length === 0) throw new InputError(`chart '${t}': needs at least one category, got none`);
  if (!Array.isArray(spec.groups) || spec.groups.length === 0) throw new InputError(`chart '${t}': needs at least one group of values, got none`);
  for (const g of spec.groups) {
    if (!Array.isArray(g.values) || g.values.length !== spec.categories.length)
      throw new InputError(`chart '${t}': group '${g.name}' has ${g.values?.length ?? 0} values but there are ${spec.categories.length} categories`);
    checkValues(t, `group '${g.name}' values`, g.values, false);
  }
  checkDomain(t, 'y', spec.yDomain, false);
  checkSize(t, 'width', spec.width ?? 720);
  checkSize(t, 'height', spec.height ?? 480);
}

/** Renders a grouped bar chart to SVG text. Throws InputError for empty input, length mismatches or NaN/Infinity. */
export function barChart(spec: BarSpec): string {
  validate(spec);
  const width = spec.width ?? 720, height = spec.height ?? 480;
  const all = spec.groups.flatMap((g) => g.values);
  const lo = spec.yDomain ? spec.yDomain[0] : Math.min(0, ...all);
  const hi = spec.yDomain ? spec.yDomain[1] : Math.max(0, ...all);

  const entries: LegendEntry[] = spec.groups.length > 1 ? spec.groups.map((g, i) => ({ name: g.name, color: g.color ?? colorAt(i), kind: 'bar' })) : [];
  const lw = legendWidth(entries);
  const longest = Math.max(...spec.categories.map((c) => textWidth(c, TICK_SIZE)));
  const top = 44;
  const probe = makeScale(lo, hi, 400, 0, false, spec.yDomain !== undefined);
  const left = Math.ceil(LABEL_SIZE + 18 + yTickWidth(probe) + 8);
  const right = width - 16 - lw;
  const slot = (right - left) / spec.categories.length;
  const rotate = longest > slot - 6;
  // Rotated (−45°) labels hang down by about 0.71 × their length below the tick row; the axis title goes under them.
  const bottom = height - (rotate ? Math.min(height * 0.45, 8 + TICK_SIZE + longest * 0.71 + 30) : 52);
  const box: Box = { left, top, right, bottom };
  if (box.right - box.left < 40 || box.bottom - box.top < 40) throw new InputError(`chart '${spec.title}': ${width}x${height} leaves no room for the bars; use a larger size or shorter labels`);
  const y = makeScale(lo, hi, box.bottom, box.top, false, spec.yDomain !== undefined);

  const out: string[] = [svgOpen(width, height, spec.title), yAxis(y, box)];
  const n = spec.groups.length;
  const inner = slot * 0.8;
  const bw = inner / n;
  const base = y.map(Math.max(y.domain[0], Math.min(y.domain[1], 0)));
  spec.categories.forEach((c, ci) => {
    const x0 = box.left + ci * slot + (slot - inner) / 2;
    spec.groups.forEach((g, gi) => {
      const v = g.values[ci]!;
      const yv = y.map(Math.max(y.domain[0], Math.min(y.domain[1], v)));
      const color = g.color ?? colorAt(gi);
      out.push(`<rect class="bar" x="${px(x0 + gi * bw + 0.5)}" y="${px(Math.min(yv, base))}" width="${px(Math.max(1, bw - 1))}" height="${px(Math.abs(base - yv))}" fill="${color}"><title>${esc(`${g.name} / ${c}: ${v}`)}</title></rect>`);
    });
    const cx = box.left + (ci + 0.5) * slot;
    const ty = box.bottom + 8 + TICK_SIZE;
    out.push(rotate
      ? `<text x="${px(cx)}" y="${px(ty)}" font-size="${TICK_SIZE}" text-anchor="end" fill="#333333" transform="rotate(-45 ${px(cx)} ${px(ty)})">${esc(c)}</text>`
      : `<text x="${px(cx)}" y="${px(ty)}" font-size="${TICK_SIZE}" text-anchor="middle" fill="#333333">${esc(c)}</text>`);
  });
  if (lo < 0 && hi > 0) out.push(`<line x1="${px(box.left)}" y1="${px(base)}" x2="${px(box.right)}" y2="${px(base)}" stroke="#333333" stroke-width="1"/>`);
  out.push(frame(box));
  out.push(titles(width, box, spec.title, spec.xLabel, spec.yLabel, height - 10));
  out.push(legend(entries, box.right + 12, box.top));
  out.push('</svg>');
  return out.join('\n') + '\n';
}
