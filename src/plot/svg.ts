/**
 * Low-level SVG text helpers shared by the chart builders: escaping, number formatting for
 * coordinates, text width estimates and the colour-blind-safe palette.
 */

/**
 * Okabe–Ito palette (safe for the common colour-vision deficiencies) plus Tol's wine; black and
 * the faint yellow come last so the first seven series never collide with black reference marks.
 */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#E69F00', '#CC79A7', '#56B4E9', '#882255', '#000000', '#F0E442'] as const;

/** Colour of the i-th series unless it sets its own. */
export function colorAt(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

/** Font stack: DejaVu Sans is what librsvg (sharp) finds on Debian; the rest for browsers. */
export const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";

/** Escapes text for use in SVG content and attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Pixel coordinate with two decimals (keeps the SVG small and deterministic). */
export function px(v: number): string {
  return (Math.round(v * 100) / 100).toString();
}

/** Rough rendered width of `s` at `size` px in DejaVu Sans (average advance ≈ 0.6 em). */
export function textWidth(s: string, size: number): number {
  return s.length * size * 0.6;
}

/**
 * A tick label as SVG text content: "1e5" is drawn as 10 with a raised 5; anything else verbatim.
 * Only tspans with dy are used, which both browsers and librsvg render.
 */
export function tickText(label: string, size: number): string {
  const m = /^1e(-?\d+)$/.exec(label);
  if (!m) return esc(label);
  const sup = Math.round(size * 0.75);
  return `10<tspan dy="${px(-size * 0.45)}" font-size="${sup}">${m[1]}</tspan>`;
}

/** Opening tag of a chart's root element, with a white background and a title for accessibility. */
export function svgOpen(width: number, height: number, title: string): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<title>${esc(title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
  ].join('\n');
}
