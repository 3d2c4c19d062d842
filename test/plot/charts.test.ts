import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { lineChart, barChart, svgToPng, writeChart, type ChartSpec } from '../../src/plot/index.ts';
import { InputError } from '../../src/util/errors.ts';
import { parseXml } from './xml.ts';

const base: ChartSpec = {
  title: 'Loss <vs> compute & more', xLabel: 'FLOPs', yLabel: 'loss', xLog: true,
  series: [
    { name: 'runs', x: [1e9, 1e10, 1e11], y: [3.1, 2.6, 2.3], style: 'points', yErr: [0.05, 0.04, 0.03] },
    { name: 'fit', x: [1e9, 1e10, 1e11, 1e12], y: [3.1, 2.6, 2.3, 2.1], style: 'line' },
  ],
  annotations: [{ x: 1e12, y: 2.1, text: 'target' }],
};

test('lineChart produces well-formed SVG with every part present', () => {
  const svg = lineChart(base);
  const { root, elements } = parseXml(svg);
  assert.equal(root, 'svg');
  assert.match(svg, /width="720" height="480"/);
  assert.ok(svg.includes('Loss &lt;vs&gt; compute &amp; more'), 'title is escaped');
  assert.equal((svg.match(/<circle /g) ?? []).length, 3 + 1, '3 points + 1 legend marker');
  assert.ok((elements.get('path') ?? 0) >= 3 + 1 + 1, 'error bars, the fit line and the annotation');
  assert.ok(svg.includes('>runs</text>') && svg.includes('>fit</text>'), 'legend names');
  assert.ok(svg.includes('>target</text>'), 'annotation text');
  // decade labels 10^9 .. 10^12 drawn as 10 with a superscript
  for (const k of [9, 10, 11, 12]) assert.ok(svg.includes(`font-size="8">${k}</tspan>`), `decade 10^${k}`);
});

test('lineChart draws the y = x diagonal when asked and honours fixed domains', () => {
  const svg = lineChart({ title: 'calibration', xLabel: 'confidence', yLabel: 'accuracy', diagonal: true, xDomain: [0, 1], yDomain: [0, 1],
    series: [{ name: 'model', x: [0.1, 0.5, 0.9], y: [0.2, 0.5, 0.8] }] });
  parseXml(svg);
  assert.match(svg, /class="diagonal"/);
  assert.ok(svg.includes('>y = x</text>'));
  assert.ok(svg.includes('>1.0</text>') && svg.includes('>0</text>'));
});

test('bad series give a clear InputError naming the problem', () => {
  const bad = (series: ChartSpec['series'], extra: Partial<ChartSpec> = {}) => () => lineChart({ ...base, annotations: [], ...extra, series });
  assert.throws(bad([]), (e: Error) => e instanceof InputError && /at least one series/.test(e.message));
  assert.throws(bad([{ name: 'empty', x: [], y: [] }]), /series 'empty' is empty/);
  assert.throws(bad([{ name: 'nan', x: [1, 2], y: [1, NaN] }]), /series 'nan' y\[1\] must be a finite number, got NaN/);
  assert.throws(bad([{ name: 'inf', x: [1, Infinity], y: [1, 2] }]), /series 'inf' x\[1\].*Infinity/);
  assert.throws(bad([{ name: 'len', x: [1, 2], y: [1] }]), /2 x values but 1 y values/);
  assert.throws(bad([{ name: 'zero', x: [0, 10], y: [1, 2] }]), /series 'zero' x\[0\] is 0 but the axis is logarithmic/);
  assert.throws(bad([{ name: 'ok', x: [1, 2], y: [1, 2] }], { yDomain: [2, 1] }), /yDomain must be \[lo, hi\]/);
});

test('barChart produces one rect per value, a legend and a zero line for negative values', () => {
  const svg = barChart({ title: 'ratios', xLabel: 'case', yLabel: 'ratio', categories: ['a', 'b', 'c'],
    groups: [{ name: 'lumen', values: [1, 2, -0.5] }, { name: 'peer', values: [1, 1, 1] }] });
  assert.equal(parseXml(svg).root, 'svg');
  assert.equal((svg.match(/class="bar"/g) ?? []).length, 6);
  assert.ok(svg.includes('>lumen</text>') && svg.includes('>peer</text>'));
  assert.ok(!svg.includes('rotate(-45'), 'short labels stay horizontal');
  const long = barChart({ title: 'long', xLabel: 'task', yLabel: 'acc', categories: [...Array(8)].map((_, i) => `a rather long category name ${i}`), groups: [{ name: 'g', values: [...Array(8)].map((_, i) => i / 8) }] });
  parseXml(long);
  assert.equal((long.match(/rotate\(-45/g) ?? []).length, 8, 'long labels are rotated');
  assert.throws(() => barChart({ title: 't', xLabel: '', yLabel: '', categories: ['a'], groups: [{ name: 'g', values: [1, 2] }] }), /has 2 values but there are 1 categories/);
  assert.throws(() => barChart({ title: 't', xLabel: '', yLabel: '', categories: ['a'], groups: [{ name: 'g', values: [NaN] }] }), /finite number, got NaN/);
  assert.throws(() => barChart({ title: 't', xLabel: '', yLabel: '', categories: [], groups: [] }), /at least one category/);
});

test('svgToPng renders at the requested scale and writeChart writes both files', async () => {
  const svg = lineChart({ ...base, width: 400, height: 300 });
  const png = await svgToPng(svg, 2);
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, 800);
  assert.equal(meta.height, 600);
  // not blank: the rendered image has dark pixels (text, frame) as well as white background
  const stats = await sharp(png).stats();
  assert.ok(stats.channels[0]!.min < 60 && stats.channels[0]!.max > 240);
  await assert.rejects(svgToPng('not svg'), /expected SVG text/);

  const dir = mkdtempSync(join(tmpdir(), 'lumen-plot-'));
  try {
    const paths = await writeChart(join(dir, 'sub', 'chart'), svg);
    assert.equal(readFileSync(paths.svg, 'utf8'), svg);
    const m2 = await sharp(readFileSync(paths.png)).metadata();
    assert.equal(m2.width, 800);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
