import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  VisualDataset, visualSpec, visualSample, renderSpec, VISUAL_TASKS, VISUAL_TASK_NAMES, COLORS, COLOR_NAMES, SHAPES,
  HELDOUT_PAIRS, isHeldoutPair, ANSWER_VOCABULARY, rgbToPng, renderSvg, renderSvgs, TEXT_HELDOUT, TEXT_WORDS, CHART_HELDOUT, followUps, type VisualTask, type Split,
} from '../../src/data/visual/index.ts';
import { shapesQuestions, cellName, type ShapesScene } from '../../src/data/visual/shapes.ts';
import type { TextScene } from '../../src/data/visual/text.ts';
import { chartQuestions, type ChartScene } from '../../src/data/visual/charts.ts';
import { InputError } from '../../src/util/errors.ts';
import sharp from 'sharp';

const N = 150; // specs per task and split for the parameter checks (no rendering: fast)

function hex(c: string): [number, number, number] {
  return [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)];
}
function rgbAt(rgb: Uint8Array, S: number, x: number, y: number): [number, number, number] {
  const o = (Math.round(y) * S + Math.round(x)) * 3;
  return [rgb[o]!, rgb[o + 1]!, rgb[o + 2]!];
}
const close = (a: number[], b: number[], tol: number) => a.every((v, i) => Math.abs(v - b[i]!) <= tol);

test('same seed gives identical pixels and QA; other seeds and splits differ', async () => {
  for (const task of VISUAL_TASK_NAMES) {
    const a = await visualSample(task, 'train', 7, 3, { size: 32 });
    const b = await visualSample(task, 'train', 7, 3, { size: 32 });
    assert.deepEqual(a.rgb, b.rgb, task);
    assert.deepEqual(a.image, b.image, task);
    assert.equal(a.question, b.question);
    assert.equal(a.answer, b.answer);
    assert.equal(a.image.length, 3 * 32 * 32);
    assert.equal(a.rgb.length, 32 * 32 * 3);
    const specs = [visualSpec(task, 'train', 8, 3), visualSpec(task, 'heldout', 7, 3), visualSpec(task, 'train', 7, 4)];
    for (const s of specs) assert.notEqual(s.svg, visualSpec(task, 'train', 7, 3).svg, `${task}: a different seed/split/index gives a different scene`);
  }
  const ds = new VisualDataset({ seed: 2, size: 24, tasks: ['color', 'number'] });
  const [x, y] = [await ds.batch(5, 4), await ds.batch(5, 4)];
  assert.deepEqual(x.map((s) => s.rgb), y.map((s) => s.rgb));
  assert.deepEqual(x.map((s) => s.task), ['number', 'color', 'number', 'color']);
});

function pairsOf(task: VisualTask, split: Split, i: number): { pairs: [string, string][]; focus: [string, string] | null } {
  const s = visualSpec(task, split, 11, i);
  switch (VISUAL_TASKS[task].family) {
    case 'shapes': case 'captions': {
      const sc = s.scene as ShapesScene;
      const pairs = sc.objects.map((o) => [o.color, o.shape] as [string, string]);
      return { pairs, focus: sc.focus >= 0 ? pairs[sc.focus]! : null };
    }
    case 'text': { const t = s.scene as TextScene; return { pairs: [[t.font, t.color]], focus: [t.font, t.color] }; }
    case 'charts': { const c = s.scene as ChartScene; return { pairs: [[c.kind, c.color]], focus: [c.kind, c.color] }; }
  }
}

test('split disjointness: held-out combinations never in train/heldout, always in compositional', () => {
  const held = (fam: string) => (fam === 'text' ? TEXT_HELDOUT : fam === 'charts' ? CHART_HELDOUT : HELDOUT_PAIRS).map((p) => p.join('/'));
  for (const task of VISUAL_TASK_NAMES) {
    const H = held(VISUAL_TASKS[task].family);
    for (const split of ['train', 'heldout'] as const) {
      for (let i = 0; i < N; i++) {
        for (const p of pairsOf(task, split, i).pairs) assert.ok(!H.includes(p.join('/')), `${task} ${split} #${i} contains held-out ${p.join('/')}`);
      }
    }
    for (let i = 0; i < N; i++) {
      const { pairs, focus } = pairsOf(task, 'compositional', i);
      if (focus) assert.ok(H.includes(focus.join('/')), `${task} compositional #${i}: the asked-about object ${focus.join('/')} is not held out`);
      else assert.ok(pairs.some((p) => H.includes(p.join('/'))), `${task} compositional #${i} has no held-out pair`);
    }
  }
  // Every colour and every shape still appears in training.
  const seen = new Set<string>();
  for (let i = 0; i < N; i++) for (const [c, s] of pairsOf('shape', 'train', i).pairs) { seen.add(c); seen.add(s); }
  for (const x of [...COLOR_NAMES, ...SHAPES]) assert.ok(seen.has(x), x);
});

test('answers agree with the scene parameters and the documented vocabulary', () => {
  for (const split of ['train', 'compositional'] as const) {
    for (const task of VISUAL_TASK_NAMES) {
      const answers = new Set<string>();
      for (let i = 0; i < N; i++) {
        const s = visualSpec(task, split, 5, i);
        answers.add(s.answer);
        const fam = VISUAL_TASKS[task].family;
        if (fam === 'shapes') {
          const { objects, focus } = s.scene as ShapesScene;
          const f = objects[focus];
          const cells = new Set(objects.map((o) => o.row * 3 + o.col));
          assert.equal(cells.size, objects.length, 'objects in distinct cells');
          if (task === 'color' || task === 'size' || task === 'position') {
            assert.equal(objects.filter((o) => o.shape === f!.shape).length, 1, 'the named shape identifies one object');
            assert.ok(s.question.includes(f!.shape));
            if (task === 'color') assert.equal(s.answer, f!.color);
            if (task === 'size') assert.equal(s.answer, f!.size);
            if (task === 'position') assert.equal(s.answer, s.question.includes('left') ? ['left', 'middle', 'right'][f!.col] : ['top', 'middle', 'bottom'][f!.row]);
          }
          if (task === 'shape') {
            assert.equal(objects.filter((o) => o.color === f!.color).length, 1);
            assert.equal(s.question, `what shape is the ${f!.color} object?`);
            assert.equal(s.answer, f!.shape);
          }
          if (task === 'color_at' || task === 'shape_at') {
            const [, what, where] = /^what (color|shape) is the object at the (.+)\?$/.exec(s.question)!;
            const at = objects.filter((o) => cellName(o.col, o.row) === where);
            assert.deepEqual(at, [f], 'the named cell holds exactly the focus object');
            assert.equal(what, task === 'color_at' ? 'color' : 'shape');
            assert.equal(s.answer, task === 'color_at' ? f!.color : f!.shape);
          }
          if (task === 'count') {
            const shape = /how many (\w+)s are there\?/.exec(s.question)![1];
            assert.equal(s.answer, String(objects.filter((o) => o.shape === shape).length));
            assert.ok(Number(s.answer) >= 1 && Number(s.answer) <= 5);
          }
          if (task === 'relation') {
            const [, c1, rel, c2] = /is the (\w+) shape (left of|right of|above|below) the (\w+) one\?/.exec(s.question)!;
            const a = objects.find((o) => o.color === c1)!, b = objects.find((o) => o.color === c2)!;
            const truth = rel === 'left of' ? a.col < b.col : rel === 'right of' ? a.col > b.col : rel === 'above' ? a.row < b.row : a.row > b.row;
            assert.equal(s.answer, truth ? 'yes' : 'no');
            assert.ok(rel!.includes('of') ? a.col !== b.col : a.row !== b.row, 'unambiguous');
          }
        } else if (fam === 'text') {
          const t = s.scene as TextScene;
          assert.equal(s.answer, t.text);
          assert.ok(Number.isInteger(2 * t.fontSize) && t.fontSize >= 10, `font size ${t.fontSize} comes in half units`);
          if (task === 'number') assert.match(s.answer, /^[1-9]\d{3}$/);
          else assert.ok((TEXT_WORDS as readonly string[]).includes(s.answer));
        } else if (fam === 'charts') {
          const c = s.scene as ChartScene;
          const max = Math.max(...c.values);
          assert.equal(c.values.filter((v) => v === max).length, 1, 'unique maximum');
          if (task.endsWith('tallest') || task.endsWith('highest')) assert.equal(s.answer, c.labels[c.values.indexOf(max)]);
          else assert.equal(s.answer, String(c.values[c.labels.indexOf(c.asked!)]));
        } else {
          const { objects } = s.scene as ShapesScene;
          const name = (k: number) => `a ${objects[k]!.color} ${objects[k]!.shape}`;
          if (objects.length === 1) assert.equal(s.answer, name(0));
          else {
            const [a, b] = objects as [ShapesScene['objects'][0], ShapesScene['objects'][0]];
            const rel = a.row === b.row ? 'left of' : 'above';
            assert.ok(rel === 'left of' ? a.col < b.col : a.col === b.col && a.row < b.row);
            assert.equal(s.answer, `${name(0)} ${rel} ${name(1)}`);
          }
        }
      }
      const vocab = ANSWER_VOCABULARY;
      if (vocab[task]) for (const a of answers) assert.ok(vocab[task]!.includes(a), `${task}: answer ${a} outside the vocabulary`);
      if (task === 'count' || task === 'relation' || task === 'color') assert.ok(answers.size >= (task === 'relation' ? 2 : task === 'color' && split === 'compositional' ? 3 : 5), `${task} answers vary`);
    }
  }
});

test('rendered pixels show the scene: object colours at their centres, bar heights, visible text', async () => {
  const S = 64;
  for (let i = 0; i < 12; i++) {
    const spec = visualSpec('count', 'train', 9, i);
    const s = await renderSpec(spec, { size: S });
    for (const o of (s.scene as ShapesScene).objects) {
      const got = rgbAt(s.rgb, S, (o.cx * S) / 100, (o.cy * S) / 100);
      assert.ok(close(got, hex(COLORS[o.color]), 24), `object ${o.color} ${o.shape} at (${o.cx}, ${o.cy}) renders as ${got}`);
    }
  }
  for (let i = 0; i < 6; i++) {
    const s = await renderSpec(visualSpec('bar_value', 'train', 9, i), { size: S });
    const c = s.scene as ChartScene;
    const n = c.values.length, slot = 92 / n;
    c.values.forEach((v, k) => {
      const x = ((6 + slot * (k + 0.5)) * S) / 100;
      let run = 0;
      for (let y = Math.floor((80 * S) / 100); y >= 0 && close(rgbAt(s.rgb, S, x, y), hex(COLORS[c.color]), 40); y--) run++;
      const want = ((64 * v) / 9) * (S / 100) - (2 * S) / 100;
      assert.ok(Math.abs(run - want) <= 2, `bar ${c.labels[k]}=${v}: ${run} coloured pixels, expected about ${want.toFixed(1)}`);
    });
  }
  // Text: dark ink is present (fonts are installed) and not clipped at the border; fonts differ.
  const inkOf = (rgb: Uint8Array) => { let k = 0; for (let j = 0; j < rgb.length; j += 3) if (rgb[j]! + rgb[j + 1]! + rgb[j + 2]! < 300) k++; return k; };
  const byFont = new Map<string, Uint8Array>();
  for (let i = 0; i < 48; i++) {
    const s = await renderSpec(visualSpec(i % 2 ? 'word' : 'number', 'train', 4, i), { size: S });
    const ink = inkOf(s.rgb);
    assert.ok(ink > 60, `number ${s.answer} has ${ink} ink pixels: are fonts installed (fonts-dejavu-core)?`);
    for (let k = 0; k < S; k++) {
      for (const [x, y] of [[0, k], [S - 1, k], [k, 0], [k, S - 1]] as const) assert.ok(rgbAt(s.rgb, S, x, y).reduce((a, b) => a + b) > 600, `${s.task} ${s.answer} touches the border`);
    }
    const t = s.scene as TextScene;
    if (s.task === 'number') byFont.set(t.font, s.rgb);
  }
  assert.equal(byFont.size, 3);
  // PNG export decodes back to the same pixels.
  const png = await rgbToPng(byFont.get('serif')!, S);
  const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual(new Uint8Array(data), byFont.get('serif'));
  // The same number in serif and monospace renders differently (the generic families map to different fonts).
  const base = visualSpec('number', 'train', 4, 0);
  const t = base.scene as TextScene;
  const other = t.font === 'serif' ? 'monospace' : 'serif';
  const alt = { ...base, svg: base.svg.replace(`font-family="${t.font}"`, `font-family="${other}"`) };
  assert.notDeepEqual((await renderSpec(base, { size: S })).rgb, (await renderSpec(alt, { size: S })).rgb);
});

test('cached batches equal rendered ones, and are read back from the cache', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-vis-'));
  try {
    const opts = { seed: 3, size: 16, tasks: ['shape', 'bar_tallest', 'caption'] as VisualTask[], split: 'heldout' as const };
    const plain = await new VisualDataset(opts).batch(250, 10);
    const cached = await new VisualDataset({ ...opts, cacheDir: dir }).batch(250, 10); // spans chunks 0 and 1
    assert.equal(cached.length, 10);
    assert.deepEqual(cached.map((s) => [s.task, s.index, s.question, s.answer]), plain.map((s) => [s.task, s.index, s.question, s.answer]));
    assert.deepEqual(cached.map((s) => s.rgb), plain.map((s) => s.rgb));
    const key = readdirSync(dir);
    assert.equal(key.length, 1);
    assert.match(key[0]!, /^v2-heldout-seed3-s16-/);
    assert.deepEqual(readdirSync(join(dir, key[0]!)).sort(), ['chunk-0.json', 'chunk-0.rgb', 'chunk-1.json', 'chunk-1.rgb']);
    const again = await new VisualDataset({ ...opts, cacheDir: dir }).batch(250, 10);
    assert.deepEqual(again.map((s) => s.image), plain.map((s) => s.image));
    // One instance read step by step (chunks kept in memory, the oldest dropped) serves the same
    // samples as whole batches: across the chunk boundary, forward and back to an evicted chunk.
    const stream = new VisualDataset({ ...opts, cacheDir: dir });
    const steps = [];
    for (let s = 245; s < 265; s += 4) steps.push(...(await stream.batch(s, 4)));
    const whole = await new VisualDataset(opts).batch(245, 20);
    assert.deepEqual(steps.map((s) => [s.index, s.question, s.rgb, s.image]), whole.map((s) => [s.index, s.question, s.rgb, s.image]));
    await stream.batch(520, 1); // chunk 2 renders; chunk 0 leaves memory
    const back = await stream.batch(250, 2);
    assert.deepEqual(back.map((s) => s.image), plain.slice(0, 2).map((s) => s.image));
    // A damaged entry (metadata cut short, as a power loss may leave it) is rendered again.
    const meta1 = join(dir, key[0]!, 'chunk-1.json');
    writeFileSync(meta1, readFileSync(meta1, 'utf8').slice(0, 100));
    const mended = await new VisualDataset({ ...opts, cacheDir: dir }).batch(256, 4);
    assert.deepEqual(mended.map((s) => s.rgb), plain.slice(6).map((s) => s.rgb));
    assert.doesNotThrow(() => JSON.parse(readFileSync(meta1, 'utf8')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a prefetching stream renders the next chunk ahead and serves the same samples', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-vis-'));
  try {
    const opts = { seed: 5, size: 16, tasks: ['count'] as VisualTask[], cacheDir: dir };
    const ahead = new VisualDataset({ ...opts, prefetch: 1 });
    const first = await ahead.batch(0, 8);
    const [key] = readdirSync(dir);
    const chunk1 = join(dir, key!, 'chunk-1.json');
    for (let i = 0; i < 200 && !existsSync(chunk1); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(existsSync(chunk1), 'chunk 1 was rendered before it was asked for');
    const plain = new VisualDataset({ seed: 5, size: 16, tasks: ['count'] });
    assert.deepEqual(first.map((s) => s.rgb), (await plain.batch(0, 8)).map((s) => s.rgb));
    // Read in order across two chunk boundaries, then back: the samples of a plain stream.
    const got = [];
    for (let s = 250; s < 530; s += 40) got.push(...(await ahead.batch(s, 40)));
    got.push(...(await ahead.batch(3, 2)));
    const want = [...(await plain.batch(250, 280)), ...(await plain.batch(3, 2))];
    assert.deepEqual(got.map((s) => [s.index, s.answer, s.rgb]), want.map((s) => [s.index, s.answer, s.rgb]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('renderSvgs (many scenes per sharp call) gives the pixels of renderSvg one at a time, for every task', async () => {
  for (const size of [16, 48]) {
    // 20 scenes: a sheet with a partial second row.
    const specs = VISUAL_TASK_NAMES.flatMap((t, i) => [visualSpec(t, 'train', 3, i), ...(i < 5 ? [visualSpec(t, 'compositional', 3, i)] : [])]);
    const many = await renderSvgs(specs.map((s) => s.svg), size);
    assert.equal(many.length, specs.length);
    for (let k = 0; k < specs.length; k++) assert.deepEqual(many[k], await renderSvg(specs[k]!.svg, size), `${specs[k]!.task} at ${size}px`);
  }
  assert.deepEqual(await renderSvgs([], 32), []);
  await assert.rejects(renderSvgs(['<svg xmlns="http://www.w3.org/2000/svg"></svg>'], 32), /not an svgDoc document/);
  await assert.rejects(renderSvgs([visualSpec('color', 'train', 1, 0).svg], 4), /size must be an integer in \[8, 1024\]/);
});

test('bad task, split or size names the problem', () => {
  assert.throws(() => new VisualDataset({ tasks: ['colour' as VisualTask] }), (e: unknown) => e instanceof InputError && /unknown visual task "colour"; expected one of color/.test(e.message));
  assert.throws(() => new VisualDataset({ split: 'test' as Split }), /unknown visual split "test"/);
  assert.throws(() => new VisualDataset({ size: 4 }), /size must be an integer in \[8, 1024\]/);
  assert.ok(isHeldoutPair('red', 'triangle') && !isHeldoutPair('red', 'circle'));
});

test('follow-up questions: every one agrees with the scene, never repeats the sample, only allowed tasks, deterministic', () => {
  // A hand-built scene: a red circle top-left, a blue circle bottom-right, a red square in the middle.
  const o = (color: string, shape: string, col: number, row: number, size = 'big') => ({ color, shape, size, col, row, cx: 0, cy: 0, r: 12 });
  const scene = { objects: [o('red', 'circle', 0, 0), o('blue', 'circle', 2, 2, 'small'), o('red', 'square', 1, 1)], focus: 0 } as unknown as ShapesScene;
  const qs = shapesQuestions(scene);
  const ask = (q: string) => qs.filter((x) => x.question === q).map((x) => x.answer);
  assert.deepEqual(ask('what color is the square?'), ['red']);
  assert.deepEqual(ask('what color is the circle?'), [], 'two circles: ambiguous, not asked');
  assert.deepEqual(ask('what shape is the blue object?'), ['circle']);
  assert.deepEqual(ask('what shape is the red object?'), [], 'two red objects: ambiguous');
  assert.deepEqual(ask('how many circles are there?'), ['2']);
  assert.deepEqual(ask('how many squares are there?'), ['1']);
  assert.deepEqual(ask('how many triangles are there?'), [], 'counts start at 1');
  assert.deepEqual(ask('is the square at the top, in the middle or at the bottom?'), ['middle']);
  assert.equal(qs.filter((q) => q.task === 'relation').length, 0, 'only one uniquely coloured object');
  const chart = { kind: 'bar', color: 'blue', labels: ['A', 'B', 'C'], values: [3, 7, 5], asked: null } as ChartScene;
  assert.deepEqual(chartQuestions(chart).map((q) => `${q.question}=${q.answer}`),
    ['which bar is tallest?=B', 'what is the value of A?=3', 'what is the value of B?=7', 'what is the value of C?=5']);
  assert.equal(chartQuestions({ ...chart, values: [7, 7, 5] }).filter((q) => q.task === 'bar_tallest').length, 0, 'a tie has no tallest bar');

  const tasks: VisualTask[] = ['color', 'shape', 'count'];
  let total = 0;
  for (const task of tasks) for (let i = 0; i < 60; i++) {
    const spec = visualSpec(task, 'train', 5, i);
    const f = followUps(spec, tasks, 3);
    assert.deepEqual(followUps(spec, tasks, 3), f, 'deterministic');
    assert.ok(f.length <= 3);
    total += f.length;
    const all = shapesQuestions(spec.scene as ShapesScene);
    for (const q of f) {
      assert.notEqual(q.question, spec.question);
      const m = all.find((x) => x.question === q.question);
      assert.ok(m && tasks.includes(m.task) && m.answer === q.answer, `${q.question} -> ${q.answer}`);
    }
  }
  assert.ok(total > 60, `scenes of 1-3 objects give follow-ups (got ${total} for 180 samples)`);
  assert.deepEqual(followUps(visualSpec('number', 'train', 5, 0), ['number', 'color'], 3), [], 'text has no follow-ups');
  assert.deepEqual(followUps(visualSpec('color', 'train', 5, 0), tasks, 0), []);
});

test('appearance jitter: same layout, questions and answers; fills and sizes vary within bounds, each kind on its own; own cache key', async () => {
  const tasks = ['color', 'shape', 'count', 'relation'] as const;
  let fillsMoved = 0, radiiMoved = 0;
  for (const task of tasks) for (let i = 0; i < 40; i++) {
    const plain = visualSpec(task, 'train', 5, i), jit = visualSpec(task, 'train', 5, i, { jitter: { color: 1, size: 1 } });
    assert.equal(jit.question, plain.question);
    assert.equal(jit.answer, plain.answer);
    const po = (plain.scene as ShapesScene).objects, jo = (jit.scene as ShapesScene).objects;
    assert.equal(jo.length, po.length);
    const colorOnly = (visualSpec(task, 'train', 5, i, { jitter: { color: 1 } }).scene as ShapesScene).objects;
    const sizeOnly = (visualSpec(task, 'train', 5, i, { jitter: { size: 1 } }).scene as ShapesScene).objects;
    jo.forEach((o, k) => {
      const p = po[k]!;
      assert.deepEqual([o.color, o.shape, o.size, o.col, o.row, o.cx, o.cy], [p.color, p.shape, p.size, p.col, p.row, p.cx, p.cy]);
      assert.ok(Math.abs(o.r / p.r - 1) <= 0.15 + 1e-12, `radius ${o.r} vs ${p.r}`);
      const want = hex(COLORS[o.color]), got = hex(o.fill!);
      assert.ok(close(got, want, 40), `${o.color}: ${o.fill}`);
      if (!close(got, want, 0)) fillsMoved++;
      if (o.r !== p.r) radiiMoved++;
      assert.ok(jit.svg.includes(`fill="${o.fill}"`));
      // One kind alone draws the same values as both together, and leaves the other canonical.
      assert.deepEqual([colorOnly[k]!.fill, colorOnly[k]!.r], [o.fill, p.r]);
      assert.deepEqual([sizeOnly[k]!.fill, sizeOnly[k]!.r], [COLORS[o.color], o.r]);
    });
    // Every jittered fill is still nearer its own named colour than any other.
    for (const o of jo) {
      const d = (c: string) => hex(c).reduce((a, v, j) => a + (v - hex(o.fill!)[j]!) ** 2, 0);
      assert.equal(COLOR_NAMES.reduce((b, c) => (d(COLORS[c]) < d(COLORS[b]) ? c : b)), o.color);
    }
    assert.equal(visualSpec(task, 'train', 5, i, { jitter: { color: 0, size: 0 } }).svg, plain.svg);
    assert.equal(visualSpec(task, 'train', 5, i, { jitter: { color: 1, size: 1 } }).svg, jit.svg); // deterministic
  }
  assert.ok(fillsMoved > 100 && radiiMoved > 100, `${fillsMoved} fills, ${radiiMoved} radii moved`);
  // Other families are untouched.
  assert.equal(visualSpec('number', 'train', 5, 3, { jitter: { color: 1 } }).svg, visualSpec('number', 'train', 5, 3).svg);
  assert.throws(() => visualSpec('color', 'train', 5, 0, { jitter: { color: 1.5 } }), (e: unknown) => e instanceof InputError && /jitter\.color must be in \[0, 1\]/.test(e.message));
  assert.throws(() => visualSpec('color', 'train', 5, 0, { jitter: { hue: 1 } as never }), (e: unknown) => e instanceof InputError && /unknown jitter kind 'hue'/.test(e.message));
  // The rendered pixel at a big object's centre shows the jittered fill.
  const s = await visualSample('color', 'train', 5, 2, { jitter: { color: 1, size: 1 }, size: 48 });
  for (const o of (s.scene as ShapesScene).objects) if (o.size === 'big') assert.ok(close(rgbAt(s.rgb, 48, (o.cx / 100) * 48, (o.cy / 100) * 48), hex(o.fill!), 6));
  const dir = mkdtempSync(join(tmpdir(), 'lumen-vis-'));
  try {
    await new VisualDataset({ seed: 3, size: 16, tasks: ['color'], cacheDir: dir }).batch(0, 1);
    await new VisualDataset({ seed: 3, size: 16, tasks: ['color'], cacheDir: dir, jitter: { color: 0.5 } }).batch(0, 1);
    await new VisualDataset({ seed: 3, size: 16, tasks: ['color'], cacheDir: dir, jitter: { color: 0.5, size: 0.5 } }).batch(0, 1);
    assert.equal(readdirSync(dir).length, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
