/**
 * Line / scatter charts (loss curves, scaling-law fits, reliability diagrams) as SVG text.
 *
 *   const svg = lineChart({ title: 'Loss vs compute', xLabel: 'FLOPs', yLabel: 'loss', xLog: true,
 *     series: [{ name: 'runs', x: flops, y: loss, style: 'points' }, { name: 'fit', x: grid, y: fit }] });
 */
import { InputError } from '../util/errors.ts';
import { makeScale } from './ticks.ts';
import { colorAt, esc, px, svgOpen } from './svg.ts';
import { checkDomain, checkSize, checkValues } from './validate.ts';
import { frame, legend, legendWidth, titles, xAxis, yAxis, yTickWidth, LABEL_SIZE, TICK_SIZE, type Box, type LegendEntry } from './frame.ts';

/** One data series. `style` defaults to 'line+points' up to 40 points and 'line' above. `yErr` draws ± error bars. */
export interface Series { name: string; x: number[]; y: number[]; style?: 'line' | 'points' | 'line+points'; color?: string; yErr?: number[] }

/** A line chart. `diagonal` adds the y = x reference line (reliability diagrams); domains override the automatic ones. */
export interface ChartSpec {
  title: string; xLabel: string; yLabel: string; series: Series[];
  xLog?: boolean; yLog?: boolean; width?: number; height?: number;
  annotations?: { x: number; y: number; text: string }[];
  diagonal?: boolean;
  xDomain?: [number, number]; yDomain?: [number, number];
}

function validate(spec: ChartSpec): void {
  const t = spec.title;
  if (!Array.isArray(spec.series) || spec.series.length === 0) throw new InputError(`chart '${t}': needs at least one series, got none`);
  for (const s of spec.series) {
    if (!Array.isArray(s.x) || !Array.isArray(s.y)) throw new InputError(`chart '${t}': series '${s.name}' needs x and y arrays`);
    if (s.x.length === 0) throw new InputError(`chart '${t}': series '${s.name}' is empty (x and y have no points)`);
    if (s.x.length !== s.y.length) throw new InputError(`chart '${t}': series '${s.name}' has ${s.x.length} x values but ${s.y.length} y values`);
    checkValues(t, `series '${s.name}' x`, s.x, Boolean(spec.xLog));
    checkValues(t, `series '${s.name}' y`, s.y, Boolean(spec.yLog));
    if (s.yErr !== undefined) {
      if (s.yErr.length !== s.y.length) throw new InputError(`chart '${t}': series '${s.name}' has ${s.y.length} y values but ${s.yErr.length} yErr values`);
      checkValues(t, `series '${s.name}' yErr`, s.yErr, false);
      s.yErr.forEach((e, i) => { if (e < 0) throw new InputError(`chart '${t}': series '${s.name}' yErr[${i}] must be >= 0, got ${e}`); });
    }
  }
  for (const [i, a] of (spec.annotations ?? []).entries()) {
    checkValues(t, `annotation ${i} x`, [a.x], Boolean(spec.xLog));
    checkValues(t, `annotation ${i} y`, [a.y], Boolean(spec.yLog));
  }
  checkDomain(t, 'x', spec.xDomain, Boolean(spec.xLog));
  checkDomain(t, 'y', spec.yDomain, Boolean(spec.yLog));
  checkSize(t, 'width', spec.width ?? 720);
  checkSize(t, 'height', spec.height ?? 480);
}

function extent(values: number[], log: boolean): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v) || (log && v <= 0)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** Renders a line/scatter chart to SVG text. Throws InputError for empty series, NaN/Infinity, or non-positive values on a log axis. */
export function lineChart(spec: ChartSpec): string {
  validate(spec);
  const width = spec.width ?? 720, height = spec.height ?? 480;
  const xLog = Boolean(spec.xLog), yLog = Boolean(spec.yLog);

  const xs: number[] = [], ys: number[] = [];
  for (const s of spec.series) {
    xs.push(...s.x);
    s.y.forEach((y, i) => { ys.push(y); if (s.yErr) ys.push(y - s.yErr[i]!, y + s.yErr[i]!); });
  }
  for (const a of spec.annotations ?? []) { xs.push(a.x); ys.push(a.y); }
  const [xlo, xhi] = spec.xDomain ?? extent(xs, xLog);
  const [ylo, yhi] = spec.yDomain ?? extent(ys, yLog);

  const entries: LegendEntry[] = spec.series.map((s, i) => ({ name: s.name, color: s.color ?? colorAt(i), kind: styleOf(s) }));
  if (spec.diagonal) entries.push({ name: 'y = x', color: '#777777', kind: 'dashed' });
  const lw = legendWidth(entries);

  // The y scale's labels decide the left margin, so build it once with a provisional box.
  const top = 44, bottom = height - 52;
  const yProbe = makeScale(ylo, yhi, bottom, top, yLog, spec.yDomain !== undefined);
  const left = Math.ceil(LABEL_SIZE + 18 + yTickWidth(yProbe) + 8);
  const box: Box = { left, top, right: width - 16 - lw, bottom };
  if (box.right - box.left < 40) throw new InputError(`chart '${spec.title}': width ${width} leaves no room for the plot next to the legend; use a larger width or shorter series names`);
  const xs_ = makeScale(xlo, xhi, box.left, box.right, xLog, spec.xDomain !== undefined);
  const ys_ = makeScale(ylo, yhi, box.bottom, box.top, yLog, spec.yDomain !== undefined);

  const clipId = `clip-${idFor(spec.title)}`;
  const out: string[] = [svgOpen(width, height, spec.title)];
  out.push(`<defs><clipPath id="${clipId}"><rect x="${px(box.left)}" y="${px(box.top)}" width="${px(box.right - box.left)}" height="${px(box.bottom - box.top)}"/></clipPath></defs>`);
  out.push(yAxis(ys_, box), xAxis(xs_, box));
  out.push(`<g class="data" clip-path="url(#${clipId})">`);
  if (spec.diagonal) {
    const lo = Math.max(xs_.domain[0], ys_.domain[0]), hi = Math.min(xs_.domain[1], ys_.domain[1]);
    if (lo < hi) out.push(`<line class="diagonal" x1="${px(xs_.map(lo))}" y1="${px(ys_.map(lo))}" x2="${px(xs_.map(hi))}" y2="${px(ys_.map(hi))}" stroke="#777777" stroke-width="1.5" stroke-dasharray="5 4"/>`);
  }
  const markers: string[] = [];
  spec.series.forEach((s, si) => {
    const color = s.color ?? colorAt(si);
    const style = styleOf(s);
    const g: string[] = [`<g class="series" data-name="${esc(s.name)}">`];
    if (s.yErr) {
      s.y.forEach((y, i) => {
        const e = s.yErr![i]!;
        if (e === 0) return;
        const x = xs_.map(s.x[i]!);
        const yTop = ys_.map(y + e);
        const lower = y - e;
        const yBot = yLog && lower <= 0 ? box.bottom : ys_.map(lower);
        g.push(`<path d="M${px(x)} ${px(yTop)}V${px(yBot)}M${px(x - 3)} ${px(yTop)}H${px(x + 3)}M${px(x - 3)} ${px(yBot)}H${px(x + 3)}" stroke="${color}" stroke-width="1.2" fill="none"/>`);
      });
    }
    if (style !== 'points' && s.x.length > 1) {
      const d = s.x.map((x, i) => `${i === 0 ? 'M' : 'L'}${px(xs_.map(x))} ${px(ys_.map(s.y[i]!))}`).join('');
      g.push(`<path d="${d}" stroke="${color}" stroke-width="2" fill="none" stroke-linejoin="round" stroke-linecap="round"/>`);
    }
    if (style !== 'line' || s.x.length === 1) {
      // Markers are not clipped (a point on the frame stays whole) but points outside the domain are skipped.
      const m: string[] = [];
      s.x.forEach((x, i) => {
        const cx = xs_.map(x), cy = ys_.map(s.y[i]!);
        if (cx < box.left - 0.5 || cx > box.right + 0.5 || cy < box.top - 0.5 || cy > box.bottom + 0.5) return;
        m.push(`<circle cx="${px(cx)}" cy="${px(cy)}" r="3.5" fill="${color}" stroke="#ffffff" stroke-width="0.8"/>`);
      });
      markers.push(`<g class="markers" data-name="${esc(s.name)}">\n${m.join('\n')}\n</g>`);
    }
    g.push('</g>');
    out.push(g.join('\n'));
  });
  out.push('</g>');
  // Annotations: a hollow diamond (points under it stay visible) and a label.
  for (const a of spec.annotations ?? []) {
    const x = xs_.map(a.x), y = ys_.map(a.y);
    const rightHalf = x > (box.left + box.right) / 2;
    out.push(`<g class="annotation"><path d="M${px(x)} ${px(y - 7)}L${px(x + 7)} ${px(y)}L${px(x)} ${px(y + 7)}L${px(x - 7)} ${px(y)}Z" fill="none" stroke="#111111" stroke-width="1.5"/>` +
      `<text x="${px(rightHalf ? x - 11 : x + 11)}" y="${px(y - 9)}" font-size="${TICK_SIZE + 1}" text-anchor="${rightHalf ? 'end' : 'start'}" fill="#111111">${esc(a.text)}</text></g>`);
  }
  out.push(...markers);
  out.push(frame(box));
  out.push(titles(width, box, spec.title, spec.xLabel, spec.yLabel, height - 12));
  out.push(legend(entries, box.right + 12, box.top));
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function styleOf(s: Series): 'line' | 'points' | 'line+points' {
  return s.style ?? (s.x.length <= 40 ? 'line+points' : 'line');
}

/** A short deterministic id from the title, so several charts inlined in one page do not share clip ids. */
export function idFor(title: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < title.length; i++) h = Math.imul(h ^ title.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(36);
}
