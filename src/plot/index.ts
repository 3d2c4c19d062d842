/**
 * Small dependency-free charts: SVG text built by hand (line/scatter with log axes, error bars,
 * annotations and a y = x reference; grouped bars), PNG through sharp.
 */
export { lineChart, type Series, type ChartSpec } from './line.ts';
export { barChart, type BarSpec } from './bar.ts';
export { svgToPng, writeChart } from './png.ts';
export { PALETTE } from './svg.ts';
