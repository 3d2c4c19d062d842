import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { tempFiles } from './helpers.ts';
import { calibration, reliabilitySvg, writeReliabilityDiagram } from '../../src/eval/calibration.ts';

test('ECE on a hand-computed example (10 equal-width bins)', () => {
  // Bin [0.9, 1.0]: 0.95, 0.95 -> acc 0.5, conf 0.95: 2/5 * 0.45 = 0.18
  // Bin [0.6, 0.7): 0.65, 0.62 -> acc 1, conf 0.635: 2/5 * 0.365 = 0.146
  // Bin [0.1, 0.2): 0.15 -> acc 0, conf 0.15: 1/5 * 0.15 = 0.03
  const c = calibration([0.95, 0.95, 0.65, 0.62, 0.15], [1, 0, 1, 1, 0]);
  assert.ok(Math.abs(c.ece - 0.356) < 1e-12, String(c.ece));
  assert.equal(c.bins.length, 10);
  assert.deepEqual(c.bins.map((b) => b.count), [0, 1, 0, 0, 0, 0, 2, 0, 0, 2]);
  // Confidence exactly 1 falls in the last bin; perfectly calibrated answers give 0.
  assert.equal(calibration([1, 1, 0.25, 0.25, 0.25, 0.25], [1, 1, 1, 0, 0, 0]).ece, 0);
  assert.throws(() => calibration([1.5], [1]), /confidence 0 must be in \[0, 1\], got 1\.5/);
});

test('reliability diagram: SVG with the diagonal, and PNG', async () => {
  const c = calibration([0.9, 0.8, 0.3], [1, 0, 0]);
  const svg = reliabilitySvg(c);
  assert.match(svg, /^<svg/);
  assert.match(svg, /ECE/);
  const t = tempFiles({});
  try {
    const p = await writeReliabilityDiagram(t.path('cal'), c);
    assert.ok(existsSync(p.svg) && existsSync(p.png));
    assert.deepEqual([...readFileSync(p.png).subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  } finally { t.cleanup(); }
});
