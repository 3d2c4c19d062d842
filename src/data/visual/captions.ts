/**
 * Captions: one or two big objects, described in one canonical sentence.
 *
 *   one object:            "a red triangle"
 *   two in the same row:    "a <left object> left of a <right object>"
 *   two in the same column: "a <upper object> above a <lower object>"
 *
 * The answer is the whole sentence (exact match). Compositional split: at least one object is a
 * held-out colour–shape pair (HELDOUT_PAIRS); train/heldout never contain one.
 */
import type { Rng } from '../../tensor/rng.ts';
import { COLORS, COLOR_NAMES, SHAPES, isHeldoutPair, pick, intIn, svgDoc, type Color, type Shape, type Split, type SceneSpec } from './scene.ts';
import { shapeSvg } from './render.ts';
import type { SceneObject, ShapesScene } from './shapes.ts';

const CELL = [18, 50, 82];

function pair(rng: Rng, heldout: boolean): { color: Color; shape: Shape } {
  const all: { color: Color; shape: Shape }[] = [];
  for (const color of COLOR_NAMES) for (const shape of SHAPES) if (isHeldoutPair(color, shape) === heldout) all.push({ color, shape });
  return pick(rng, all);
}

/** Builds one captioning sample. */
export function captionSample(rng: Rng, split: Split): SceneSpec<ShapesScene> {
  const n = rng.uniform() < 0.25 ? 1 : 2;
  const comp = split === 'compositional';
  const objects: SceneObject[] = [];
  const make = (col: number, row: number, heldout: boolean): SceneObject => {
    const { color, shape } = pair(rng, heldout);
    const jx = (rng.uniform() - 0.5) * 4, jy = (rng.uniform() - 0.5) * 4;
    return { color, shape, size: 'big', col, row, cx: CELL[col]! + jx, cy: CELL[row]! + jy, r: 12 };
  };
  let caption: string;
  const name = (o: SceneObject) => `a ${o.color} ${o.shape}`;
  if (n === 1) {
    objects.push(make(intIn(rng, 0, 2), intIn(rng, 0, 2), comp));
    caption = name(objects[0]!);
  } else {
    const horizontal = rng.uniform() < 0.5;
    const line = intIn(rng, 0, 2);
    const a = intIn(rng, 0, 2), b = (a + intIn(rng, 1, 2)) % 3;
    const [p, q] = a < b ? [a, b] : [b, a];
    // In the compositional split one of the two (chosen at random) is held out.
    const heldFirst = comp && rng.uniform() < 0.5;
    const first = horizontal ? make(p, line, heldFirst) : make(line, p, heldFirst);
    const second = horizontal ? make(q, line, comp && !heldFirst) : make(line, q, comp && !heldFirst);
    objects.push(first, second);
    caption = `${name(first)} ${horizontal ? 'left of' : 'above'} ${name(second)}`;
  }
  const svg = svgDoc(objects.map((o) => shapeSvg(o.shape, o.cx, o.cy, o.r, COLORS[o.color])).join(''));
  return { svg, question: 'describe the image.', answer: caption, scene: { objects, focus: -1 } };
}
