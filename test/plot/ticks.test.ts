import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linearTicks, logTicks, niceStep, formatTick, makeScale } from '../../src/plot/ticks.ts';

test('niceStep picks 1, 2 or 5 times a power of ten', () => {
  assert.equal(niceStep(10, 5), 2);
  assert.equal(niceStep(1, 10), 0.1);
  assert.equal(niceStep(700, 6), 100);
  assert.equal(niceStep(0.03, 6), 0.005);
});

test('linear ticks extend the domain to whole steps and label them cleanly', () => {
  const t = linearTicks(0.13, 0.87);
  assert.deepEqual(t.domain, [0.1, 0.9]);
  assert.deepEqual(t.ticks.map((x) => x.label), ['0.1', '0.2', '0.3', '0.4', '0.5', '0.6', '0.7', '0.8', '0.9']);
  const neg = linearTicks(-3, 7);
  assert.ok(neg.ticks.some((x) => x.value === 0 && x.label === '0'));
  const flat = linearTicks(5, 5);
  assert.ok(flat.domain[0] < 5 && flat.domain[1] > 5, 'a constant series still gets a non-empty domain');
});

test('log ticks over several decades: one labelled tick per decade, minor ticks 2..9 between', () => {
  const t = logTicks(3e9, 2e14);
  const pad = Math.pow(2e14 / 3e9, 0.03);
  assert.ok(Math.abs(t.domain[0] - 3e9 / pad) < 1 && Math.abs(t.domain[1] / (2e14 * pad) - 1) < 1e-12, `domain ${t.domain}`);
  const majors = t.ticks.filter((x) => x.major);
  assert.deepEqual(majors.map((x) => x.value), [1e10, 1e11, 1e12, 1e13, 1e14]);
  assert.deepEqual(majors.map((x) => x.label), ['1e10', '1e11', '1e12', '1e13', '1e14']);
  const minors = t.ticks.filter((x) => !x.major);
  assert.ok(minors.every((x) => x.label === '' && x.value >= t.domain[0] && x.value <= t.domain[1]));
  // 3e9..9e9 below the first decade, 2e10..9e10 … 2e13..9e13, and 2e14 at the top edge
  assert.deepEqual(minors.slice(0, 7).map((x) => x.value), [3e9, 4e9, 5e9, 6e9, 7e9, 8e9, 9e9]);
  assert.equal(minors.length, 7 + 4 * 8 + 1);
  // minor ticks sit at 2..9 × a power of ten
  for (const m of minors) {
    const mant = m.value / Math.pow(10, Math.floor(Math.log10(m.value) + 1e-12));
    assert.ok(Math.abs(mant - Math.round(mant)) < 1e-9 && mant >= 2 && mant <= 9, `${m.value}`);
  }
});

test('log ticks over many decades thin out the labels', () => {
  const t = logTicks(1, 1e20);
  const labelled = t.ticks.filter((x) => x.label !== '');
  assert.ok(labelled.length <= 11 && labelled.length >= 5, `${labelled.length} labels`);
  assert.ok(labelled.every((x) => Number.isInteger(Math.round(Math.log10(x.value) * 1e9) / 1e9)));
});

test('log ticks within one decade fall back to labelled linear steps inside the data', () => {
  const t = logTicks(2.05, 3);
  const labels = t.ticks.filter((x) => x.label).map((x) => x.label);
  assert.ok(labels.length >= 3, `labels: ${labels}`);
  assert.ok(t.ticks.every((x) => x.value >= t.domain[0] && x.value <= t.domain[1]));
  assert.throws(() => logTicks(0, 10), /positive/);
});

test('formatTick uses e-notation only for extreme magnitudes', () => {
  assert.equal(formatTick(2500, 500), '2500');
  assert.equal(formatTick(0.25, 0.05), '0.25');
  assert.equal(formatTick(3e7, 1e7), '3e7');
  assert.equal(formatTick(2e-6, 1e-6), '2e-6');
});

test('makeScale maps the domain ends to the pixel ends, log axes evenly per decade', () => {
  const s = makeScale(1e2, 1e6, 100, 500, true);
  assert.ok(Math.abs(s.map(s.domain[0]) - 100) < 1e-9 && Math.abs(s.map(s.domain[1]) - 500) < 1e-9);
  assert.ok(s.map(1e2) > 100 && s.map(1e6) < 500, 'data sits inside the margin');
  assert.ok(Math.abs(s.map(1e4) - 300) < 1e-9, 'the geometric middle maps to the pixel middle');
  assert.ok(Math.abs((s.map(1e3) - s.map(1e2)) - (s.map(1e6) - s.map(1e5))) < 1e-9, 'every decade has the same length');
  const fixed = makeScale(0, 1, 400, 0, false, true);
  assert.equal(fixed.map(0.5), 200);
});
