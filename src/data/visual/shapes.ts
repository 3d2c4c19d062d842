/**
 * Shapes scenes: coloured circles, squares and triangles on a 3×3 grid (so objects never overlap and
 * positions have clear names), with questions about colour, shape, size, position, count and the
 * relative position of two objects. color and shape name the object by its other attribute ("what
 * color is the triangle?"); color_at and shape_at name it by its grid cell ("what color is the
 * object at the top left?"), so the question carries no attribute that could hint at the answer.
 *
 * Answers (exact match):
 *   color:    red | green | blue | yellow | purple | gray
 *   shape:    circle | square | triangle
 *   size:     big | small
 *   position: left | middle | right   (columns)   or   top | middle | bottom   (rows)
 *   count:    1 … maxCount (default 5)
 *   relation: yes | no
 *   color_at, shape_at: as color, shape
 */
import type { Rng } from '../../tensor/rng.ts';
import { InputError } from '../../util/errors.ts';
import {
  COLORS, COLOR_NAMES, SHAPES, HELDOUT_PAIRS, isHeldoutPair, pick, intIn, svgDoc,
  type Color, type Shape, type Size, type Split, type SceneSpec,
} from './scene.ts';
import { shapeSvg } from './render.ts';

/** One object of a scene. (col, row) is its grid cell; (cx, cy) its centre in 100×100 units. */
export interface SceneObject {
  color: Color;
  shape: Shape;
  size: Size;
  col: number;
  row: number;
  cx: number;
  cy: number;
  r: number;
  /** Fill colour when it differs from COLORS[color] (training-time jitter, see jitterScene). */
  fill?: string;
}

export interface ShapesScene {
  objects: SceneObject[];
  /** Index of the object the question is about (-1 when it is about several, e.g. counting). */
  focus: number;
}

export const SHAPE_TASKS = ['color', 'shape', 'size', 'position', 'count', 'relation', 'color_at', 'shape_at'] as const;
export type ShapeTask = (typeof SHAPE_TASKS)[number];

/** Grid cell centres (100×100 units). */
const CELL = [18, 50, 82];
const RADIUS: Record<Size, number> = { big: 12, small: 7 };
const COLS = ['left', 'middle', 'right'] as const;
const ROWS = ['top', 'middle', 'bottom'] as const;

/** How a position-referred question names grid cell (col, row): "top left", "top", …, "center". */
export function cellName(col: number, row: number): string {
  if (col === 1 && row === 1) return 'center';
  if (col === 1) return ROWS[row]!;
  if (row === 1) return COLS[col]!;
  return `${ROWS[row]} ${COLS[col]}`;
}

export interface ShapesOptions {
  /** Largest count asked by the count task (1 … 9, default 5). */
  maxCount?: number;
  /**
   * Appearance jitter (default none: every object drawn in its canonical colour and size). See
   * jitterScene; a training-time augmentation that leaves every question and answer unchanged.
   */
  jitter?: Jitter;
}

/** Constraint for one object: fixed attributes, and whether its colour–shape pair is held out. */
interface Want {
  color?: Color;
  shape?: Shape;
  size?: Size;
  /** true: must be a held-out pair; false: must not be. */
  heldout: boolean;
  notShapes?: readonly Shape[];
  notColors?: readonly Color[];
}

function drawPair(rng: Rng, w: Want): { color: Color; shape: Shape } {
  const pairs: { color: Color; shape: Shape }[] = [];
  for (const color of COLOR_NAMES) {
    for (const shape of SHAPES) {
      if (w.color && w.color !== color) continue;
      if (w.shape && w.shape !== shape) continue;
      if (w.notShapes?.includes(shape) || w.notColors?.includes(color)) continue;
      if (isHeldoutPair(color, shape) !== w.heldout) continue;
      pairs.push({ color, shape });
    }
  }
  if (pairs.length === 0) throw new Error(`shapes: no colour–shape pair satisfies ${JSON.stringify(w)}`); // a bug, not an input error
  return pick(rng, pairs);
}

/** Places objects in distinct random cells (or the given cells). */
function place(rng: Rng, wants: Want[], cells?: number[]): SceneObject[] {
  const free = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  rng.shuffle(free);
  return wants.map((w, i) => {
    const cell = cells?.[i] ?? free.filter((c) => !cells?.includes(c))[i]!;
    const { color, shape } = drawPair(rng, w);
    const size = w.size ?? (rng.uniform() < 0.5 ? 'big' : 'small');
    const col = cell % 3, row = Math.floor(cell / 3);
    const jx = (rng.uniform() - 0.5) * 4, jy = (rng.uniform() - 0.5) * 4;
    return { color, shape, size, col, row, cx: CELL[col]! + jx, cy: CELL[row]! + jy, r: RADIUS[size] };
  });
}

function toSvg(objects: SceneObject[]): string {
  return svgDoc(objects.map((o) => shapeSvg(o.shape, o.cx, o.cy, o.r, o.fill ?? COLORS[o.color])).join(''));
}

/** Strengths in [0, 1] of the two kinds of appearance jitter (0 or absent: off). */
export interface Jitter {
  /** Fill colour: every RGB channel moves by up to ±JITTER_COLOR·color. */
  color?: number;
  /** Radius: changes by up to ±JITTER_SIZE·size, relative. */
  size?: number;
}

/** Largest per-channel colour offset at strength 1 (the closest named colours, blue and purple, are 112 apart in red). */
export const JITTER_COLOR = 40;
/** Largest relative radius change at strength 1 (big 12 and small 7 stay apart: 10.2–13.8 vs 5.95–8.05). */
export const JITTER_SIZE = 0.15;

/** Whether a jitter setting changes anything (checks the strengths). */
export function jitterActive(j: Jitter | undefined): boolean {
  for (const [k, v] of Object.entries(j ?? {})) {
    if (k !== 'color' && k !== 'size') throw new InputError(`shapes: unknown jitter kind '${k}' (expected color, size)`);
    if (!(typeof v === 'number' && v >= 0 && v <= 1)) throw new InputError(`shapes: jitter.${k} must be in [0, 1], got ${v}`);
  }
  return (j?.color ?? 0) > 0 || (j?.size ?? 0) > 0;
}

/**
 * The same scene with each object's appearance varied (see Jitter). Objects, cells, names and so
 * every question and answer stay the same; only pixels change. Drawn from its own generator, four
 * draws per object whatever the strengths, so a jittered scene has the same layout as the plain one
 * and one kind's draws do not depend on the other's strength. Meant for training: a colour is then a
 * region, not one RGB point, so a model cannot fit the 15 training colour–shape pairs as a lookup of
 * exact appearances.
 */
export function jitterScene(spec: SceneSpec<ShapesScene>, rng: Rng, jitter: Jitter): SceneSpec<ShapesScene> {
  if (!jitterActive(jitter)) return spec;
  const sc = (jitter.color ?? 0) * JITTER_COLOR, sr = (jitter.size ?? 0) * JITTER_SIZE;
  const objects = spec.scene.objects.map((o) => {
    const hex = COLORS[o.color];
    const ch = [1, 3, 5].map((i) => {
      const v = parseInt(hex.slice(i, i + 2), 16) + Math.round((rng.uniform() * 2 - 1) * sc);
      return Math.max(0, Math.min(255, v)).toString(16).padStart(2, '0');
    });
    const r = o.r * (1 + (rng.uniform() * 2 - 1) * sr);
    return { ...o, r, fill: `#${ch.join('')}` };
  });
  return { ...spec, svg: toSvg(objects), scene: { ...spec.scene, objects } };
}

/** The focus object of a compositional sample is a held-out pair; every other object is a training pair. */
function focusWant(split: Split, extra: Omit<Want, 'heldout'> = {}): Want {
  return { ...extra, heldout: split === 'compositional' };
}

/** Builds one shapes question. */
export function shapesSample(task: ShapeTask, rng: Rng, split: Split, opts: ShapesOptions = {}): SceneSpec<ShapesScene> {
  const maxCount = opts.maxCount ?? 5;
  const done = (objects: SceneObject[], focus: number, question: string, answer: string): SceneSpec<ShapesScene> =>
    ({ svg: toSvg(objects), question, answer, scene: { objects, focus } });
  switch (task) {
    case 'color': case 'size': case 'position': {
      // 1–3 objects with distinct shapes; the question names the focus object by its shape.
      const n = intIn(rng, 1, 3);
      const objs = place(rng, Array.from({ length: n }, (_, i) => (i === 0 ? focusWant(split) : { heldout: false })));
      // Re-draw the others so that every shape is distinct.
      for (let i = 1; i < objs.length; i++) {
        const used = objs.slice(0, i).map((o) => o.shape);
        const p = drawPair(rng, { heldout: false, notShapes: used });
        objs[i] = { ...objs[i]!, color: p.color, shape: p.shape };
      }
      const f = objs[0]!;
      if (task === 'color') return done(objs, 0, `what color is the ${f.shape}?`, f.color);
      if (task === 'size') return done(objs, 0, `is the ${f.shape} big or small?`, f.size);
      if (rng.uniform() < 0.5) return done(objs, 0, `is the ${f.shape} on the left, in the middle or on the right?`, COLS[f.col]!);
      return done(objs, 0, `is the ${f.shape} at the top, in the middle or at the bottom?`, ROWS[f.row]!);
    }
    case 'shape': {
      // 1–3 objects with distinct colours; the question names the focus object by its colour.
      const n = intIn(rng, 1, 3);
      const objs = place(rng, Array.from({ length: n }, (_, i) => (i === 0 ? focusWant(split) : { heldout: false })));
      for (let i = 1; i < objs.length; i++) {
        const used = objs.slice(0, i).map((o) => o.color);
        const p = drawPair(rng, { heldout: false, notColors: used });
        objs[i] = { ...objs[i]!, color: p.color, shape: p.shape };
      }
      const f = objs[0]!;
      return done(objs, 0, `what shape is the ${f.color} object?`, f.shape);
    }
    case 'color_at': case 'shape_at': {
      // 1–3 objects; the question names the focus object by its grid cell, not by an attribute.
      const n = intIn(rng, 1, 3);
      const objs = place(rng, Array.from({ length: n }, (_, i) => (i === 0 ? focusWant(split) : { heldout: false })));
      const f = objs[0]!, where = cellName(f.col, f.row);
      return task === 'color_at' ? done(objs, 0, `what color is the object at the ${where}?`, f.color) : done(objs, 0, `what shape is the object at the ${where}?`, f.shape);
    }
    case 'count': {
      // k objects of the asked shape plus 0–3 others; in the compositional split at least one of the
      // counted objects is a held-out pair.
      const k = intIn(rng, 1, Math.min(9, maxCount));
      const shape = split === 'compositional' ? pick(rng, HELDOUT_PAIRS)[1] : pick(rng, SHAPES);
      const others = Math.min(9 - k, intIn(rng, 0, 3));
      const wants: Want[] = [];
      for (let i = 0; i < k; i++) wants.push(i === 0 && split === 'compositional' ? { shape, heldout: true } : { shape, heldout: false });
      for (let i = 0; i < others; i++) wants.push({ heldout: false, notShapes: [shape] });
      const objs = place(rng, wants);
      return done(objs, -1, `how many ${shape}s are there?`, String(k));
    }
    case 'relation': {
      // Two objects of different colours in different columns (left/right) or rows (above/below).
      const horizontal = rng.uniform() < 0.5;
      const a = intIn(rng, 0, 2), b = (a + intIn(rng, 1, 2)) % 3; // distinct lines
      const other = intIn(rng, 0, 2), other2 = intIn(rng, 0, 2);
      const cells = horizontal ? [other * 3 + a, other2 * 3 + b] : [a * 3 + other, b * 3 + other2];
      const objs = place(rng, [focusWant(split), { heldout: false }], cells);
      const p = drawPair(rng, { heldout: false, notColors: [objs[0]!.color] });
      objs[1] = { ...objs[1]!, color: p.color, shape: p.shape };
      const [x, y] = objs as [SceneObject, SceneObject];
      const rel = horizontal ? (rng.uniform() < 0.5 ? 'left of' : 'right of') : (rng.uniform() < 0.5 ? 'above' : 'below');
      const truth = rel === 'left of' ? x.col < y.col : rel === 'right of' ? x.col > y.col : rel === 'above' ? x.row < y.row : x.row > y.row;
      return done(objs, 0, `is the ${x.color} shape ${rel} the ${y.color} one?`, truth ? 'yes' : 'no');
    }
    default:
      return task satisfies never;
  }
}

/** One question about a scene, with the task it belongs to. */
export interface SceneQuestion { task: ShapeTask; question: string; answer: string }

/**
 * Every question of the shapes tasks that a scene answers unambiguously, in a fixed order:
 * colour, size and position of each object whose shape is unique in the scene; the shape of each
 * object whose colour is unique; colour and shape of every object named by its grid cell; the count of each shape present (up to maxCount); left/right and
 * above/below for each ordered pair of uniquely coloured objects in different columns or rows.
 * Used for follow-up turns (several questions about one image in one training conversation).
 */
export function shapesQuestions(scene: ShapesScene, opts: ShapesOptions = {}): SceneQuestion[] {
  const maxCount = opts.maxCount ?? 5, objs = scene.objects, out: SceneQuestion[] = [];
  const uniqueShape = (o: SceneObject) => objs.filter((p) => p.shape === o.shape).length === 1;
  const uniqueColor = (o: SceneObject) => objs.filter((p) => p.color === o.color).length === 1;
  for (const o of objs) {
    if (uniqueShape(o)) {
      out.push({ task: 'color', question: `what color is the ${o.shape}?`, answer: o.color });
      out.push({ task: 'size', question: `is the ${o.shape} big or small?`, answer: o.size });
      out.push({ task: 'position', question: `is the ${o.shape} on the left, in the middle or on the right?`, answer: COLS[o.col]! });
      out.push({ task: 'position', question: `is the ${o.shape} at the top, in the middle or at the bottom?`, answer: ROWS[o.row]! });
    }
    if (uniqueColor(o)) out.push({ task: 'shape', question: `what shape is the ${o.color} object?`, answer: o.shape });
    const where = cellName(o.col, o.row);
    out.push({ task: 'color_at', question: `what color is the object at the ${where}?`, answer: o.color });
    out.push({ task: 'shape_at', question: `what shape is the object at the ${where}?`, answer: o.shape });
  }
  for (const shape of SHAPES) {
    const k = objs.filter((o) => o.shape === shape).length;
    if (k >= 1 && k <= maxCount) out.push({ task: 'count', question: `how many ${shape}s are there?`, answer: String(k) });
  }
  for (const x of objs) for (const y of objs) {
    if (x === y || !uniqueColor(x) || !uniqueColor(y)) continue;
    if (x.col !== y.col) out.push({ task: 'relation', question: `is the ${x.color} shape left of the ${y.color} one?`, answer: x.col < y.col ? 'yes' : 'no' });
    if (x.row !== y.row) out.push({ task: 'relation', question: `is the ${x.color} shape above the ${y.color} one?`, answer: x.row < y.row ? 'yes' : 'no' });
  }
  return out;
}
