/**
 * Axis scales and tick placement for the plot library.
 *
 * Linear axes use "nice" steps (1, 2, 5 × 10^k) and extend the domain to whole steps, so the
 * first and last gridlines sit on the frame. Log axes (base 10) keep the data range (3% margin)
 * and put a labelled tick on every decade (every 2nd, 3rd… decade when there are many) with
 * unlabelled minor ticks at 2..9 × 10^k; over one to two decades 2 and 5 × 10^k are labelled too,
 * and under one decade the ticks are plain linear steps.
 */

/** One tick: its data value, its label ('' for a minor tick) and whether it is major. */
export interface Tick { value: number; label: string; major: boolean; }

/** A mapping from data values to pixels along one axis. */
export interface Scale {
  domain: [number, number];
  log: boolean;
  /** Data value → pixel. */
  map(v: number): number;
  ticks: Tick[];
}

/** The nice step (1, 2 or 5 × 10^k) nearest to span / target. */
export function niceStep(span: number, target = 6): number {
  const raw = span / Math.max(1, target);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  const nice = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return nice * mag;
}

/** Formats a tick value with just enough decimals for `step`; very large or small magnitudes use e-notation. */
export function formatTick(v: number, step: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) {
    const s = v.toExponential(Math.max(0, Math.min(6, Math.ceil(-Math.log10(step / a)) - 1)));
    return s.replace(/\.?0+e/, 'e').replace('e+', 'e');
  }
  const decimals = Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

/** Linear ticks covering [lo, hi]; returns the extended (nice) domain too. */
export function linearTicks(lo: number, hi: number, target = 6): { domain: [number, number]; ticks: Tick[] } {
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad; hi += pad;
  }
  const step = niceStep(hi - lo, target);
  const start = Math.floor(lo / step + 1e-9) * step;
  const end = Math.ceil(hi / step - 1e-9) * step;
  const ticks: Tick[] = [];
  const n = Math.round((end - start) / step);
  for (let i = 0; i <= n; i++) {
    const v = start + i * step;
    const clean = Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12));
    ticks.push({ value: clean, label: formatTick(clean, step), major: true });
  }
  return { domain: [start, end], ticks };
}

/** Label for 10^k: plain numbers for small k, otherwise "1e{k}" (the renderer draws it as 10 with a superscript). */
export function decadeLabel(k: number): string {
  if (k >= 0 && k <= 3) return String(Math.pow(10, k));
  if (k < 0 && k >= -3) return Math.pow(10, k).toFixed(-k);
  return `1e${k}`;
}

/** Log-10 ticks covering [lo, hi] (both > 0); the domain is the data range widened by 3% in log space. */
export function logTicks(lo: number, hi: number): { domain: [number, number]; ticks: Tick[] } {
  if (!(lo > 0) || !(hi > 0)) throw new RangeError(`log axis needs positive values, got [${lo}, ${hi}]`);
  if (lo === hi) { lo /= 2; hi *= 2; }
  const kLo = Math.floor(Math.log10(lo) + 1e-9);
  let kHi = Math.ceil(Math.log10(hi) - 1e-9);
  if (kHi === kLo) kHi += 1;
  const decades = kHi - kLo;
  const ticks: Tick[] = [];
  if (hi / lo < 10) {
    // Less than a decade: linear nice ticks inside the data range, all labelled; the domain is
    // the data range widened by 3% on each side (in log space) so points do not sit on the frame.
    const pad = Math.pow(hi / lo, 0.03);
    const domain: [number, number] = [lo / pad, hi * pad];
    const step = niceStep(domain[1] - domain[0], 5);
    for (let v = Math.ceil(domain[0] / step) * step; v <= domain[1] * (1 + 1e-12); v += step) {
      const clean = Number(v.toPrecision(12));
      if (clean > 0) ticks.push({ value: clean, label: formatTick(clean, step), major: true });
    }
    return { domain, ticks };
  }
  if (hi / lo <= 100) {
    // One to two decades: the data range itself, labels at 1, 2 and 5 × 10^k, minor ticks between.
    const pad = Math.pow(hi / lo, 0.03);
    const domain: [number, number] = [lo / pad, hi * pad];
    for (let k = kLo; k <= kHi; k++) {
      for (let m = 1; m <= 9; m++) {
        const v = Number((m * Math.pow(10, k)).toPrecision(12));
        if (v < domain[0] || v > domain[1]) continue;
        const major = m === 1 || m === 2 || m === 5;
        ticks.push({ value: v, label: major ? (m === 1 ? decadeLabel(k) : formatTick(v, Math.pow(10, k))) : '', major });
      }
    }
    return { domain, ticks };
  }
  // Several decades: a labelled tick per decade (every 2nd, 3rd… when there are many), minor
  // ticks at 2..9 × 10^k; the domain is the data range widened by 3% (in log space) on each side.
  const pad = Math.pow(hi / lo, 0.03);
  const domain: [number, number] = [lo / pad, hi * pad];
  const every = decades <= 8 ? 1 : Math.ceil(decades / 8);
  for (let k = kLo; k <= kHi; k++) {
    const base = Math.pow(10, k);
    const v = Number(base.toPrecision(12));
    if (v >= domain[0] && v <= domain[1]) ticks.push({ value: v, label: k % every === 0 ? decadeLabel(k) : '', major: k % every === 0 });
    if (every === 1) {
      for (let m = 2; m <= 9; m++) {
        const mv = Number((m * base).toPrecision(12));
        if (mv >= domain[0] && mv <= domain[1]) ticks.push({ value: mv, label: '', major: false });
      }
    }
  }
  return { domain, ticks };
}

/**
 * Builds a scale for values in [lo, hi] onto pixels [p0, p1] (p1 < p0 for a y axis).
 * `fixed` keeps the given domain exactly (user-set xDomain/yDomain) and only places ticks inside it.
 */
export function makeScale(lo: number, hi: number, p0: number, p1: number, log: boolean, fixed = false): Scale {
  const t = log ? logTicks(lo, hi) : linearTicks(lo, hi);
  const domain: [number, number] = fixed ? [lo, hi] : t.domain;
  const ticks = fixed
    ? t.ticks.filter((tk) => tk.value >= Math.min(lo, hi) - 1e-12 * Math.abs(hi - lo) && tk.value <= Math.max(lo, hi) + 1e-12 * Math.abs(hi - lo))
    : t.ticks;
  const f = log ? Math.log10 : (v: number) => v;
  const d0 = f(domain[0]), d1 = f(domain[1]);
  const span = d1 - d0 || 1;
  return { domain, log, ticks, map: (v: number) => p0 + ((f(v) - d0) / span) * (p1 - p0) };
}
