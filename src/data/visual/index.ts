/**
 * Synthetic visual question answering: unlimited samples, deterministic by seed, rendered from SVG
 * with sharp. Families and tasks (answers are short and canonical, compared by exact match):
 *
 *   shapes:   color, shape, size, position, count, relation,    (see shapes.ts for the vocabulary)
 *             color_at, shape_at
 *   text:     number, word                                     (text.ts)
 *   charts:   bar_tallest, bar_value, line_highest, line_value (charts.ts)
 *   captions: caption                                          (captions.ts; the answer is a sentence)
 *
 * Splits: 'train'; 'heldout' = the train distribution with disjoint generator seeds; 'compositional'
 * = attribute combinations never seen in train (HELDOUT_PAIRS, TEXT_HELDOUT, CHART_HELDOUT).
 *
 * `VisualDataset` serves sample i of a task mixture (round robin over its tasks), renders many
 * scenes per sharp call (renderSvgs) with a bounded number of calls in flight, and can cache rendered chunks of 256 samples to a
 * directory keyed by (split, seed, size, tasks, jitter). Training images of the shapes tasks can be
 * jittered in colour and size (ShapesOptions.jitter, shapes.ts jitterScene).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { InputError } from '../../util/errors.ts';
import { writeFileReplacing } from '../../util/fs.ts';
import { rgbToChw, DEFAULT_MEAN, DEFAULT_STD } from '../../io/image.ts';
import { sampleRng, SPLITS, COLOR_NAMES, SHAPES, SIZES, type Family, type Split, type SceneSpec } from './scene.ts';
import { shapesSample, shapesQuestions, jitterScene, jitterActive, type ShapeTask, type ShapesOptions, type ShapesScene } from './shapes.ts';
import { textSample, TEXT_WORDS, type TextTask } from './text.ts';
import { chartSample, chartQuestions, type ChartTask, type ChartScene } from './charts.ts';
import { captionSample } from './captions.ts';
import { renderSvg, renderSvgs, mapLimit } from './render.ts';

export * from './scene.ts';
export { SHAPE_TASKS, type Jitter } from './shapes.ts';
export { TEXT_TASKS, TEXT_WORDS, TEXT_HELDOUT, FONTS } from './text.ts';
export { CHART_TASKS, CHART_HELDOUT } from './charts.ts';
export { renderSvg, renderSvgs, rgbToPng } from './render.ts';

/** Every task, its family and its fixed stream code (codes never change, so streams stay stable). */
export const VISUAL_TASKS = {
  color: { family: 'shapes', code: 1 },
  shape: { family: 'shapes', code: 2 },
  size: { family: 'shapes', code: 3 },
  position: { family: 'shapes', code: 4 },
  count: { family: 'shapes', code: 5 },
  relation: { family: 'shapes', code: 6 },
  color_at: { family: 'shapes', code: 7 },
  shape_at: { family: 'shapes', code: 8 },
  number: { family: 'text', code: 11 },
  word: { family: 'text', code: 12 },
  bar_tallest: { family: 'charts', code: 21 },
  bar_value: { family: 'charts', code: 22 },
  line_highest: { family: 'charts', code: 23 },
  line_value: { family: 'charts', code: 24 },
  caption: { family: 'captions', code: 31 },
} as const satisfies Record<string, { family: Family; code: number }>;

export type VisualTask = keyof typeof VISUAL_TASKS;
export const VISUAL_TASK_NAMES = Object.keys(VISUAL_TASKS) as VisualTask[];

const DIGITS_1_9 = ['1', '2', '3', '4', '5', '6', '7', '8', '9'];
const LETTERS = ['A', 'B', 'C', 'D', 'E'];

/**
 * The closed answer set of each task (exact match). null: open answers — number is any 4-digit
 * number 1000–9999; caption is a sentence built as described in captions.ts. count goes up to
 * the dataset's maxCount (5 by default; listed here for the default).
 */
export const ANSWER_VOCABULARY: Record<VisualTask, readonly string[] | null> = {
  color: COLOR_NAMES,
  shape: SHAPES,
  size: SIZES,
  position: ['left', 'middle', 'right', 'top', 'bottom'],
  count: ['1', '2', '3', '4', '5'],
  relation: ['yes', 'no'],
  color_at: COLOR_NAMES,
  shape_at: SHAPES,
  number: null,
  word: TEXT_WORDS,
  bar_tallest: LETTERS,
  bar_value: DIGITS_1_9,
  line_highest: LETTERS,
  line_value: DIGITS_1_9,
  caption: null,
};

/** A question before rendering: the scene, its SVG and the QA pair. */
export interface VisualSpec extends SceneSpec {
  task: VisualTask;
  family: Family;
  split: Split;
  seed: number;
  index: number;
}

/** A rendered sample. */
export interface VisualSample {
  task: VisualTask;
  family: Family;
  split: Split;
  seed: number;
  index: number;
  question: string;
  answer: string;
  scene: unknown;
  size: number;
  /** (S, S, 3) interleaved RGB bytes. */
  rgb: Uint8Array;
  /** (3, S, S) normalised like `decodeImage` (mean/std of the dataset). */
  image: Float32Array;
}

export interface VisualOptions extends ShapesOptions {
  /** Image side in pixels (default 32). */
  size?: number;
  mean?: readonly number[];
  std?: readonly number[];
}

/** Checks a task name, with a message listing the known ones. */
export function checkTask(task: string): VisualTask {
  if (!Object.hasOwn(VISUAL_TASKS, task)) throw new InputError(`unknown visual task ${JSON.stringify(task)}; expected one of ${VISUAL_TASK_NAMES.join(', ')}`);
  return task as VisualTask;
}

/** Checks a split name. */
export function checkSplit(split: string): Split {
  if (!(SPLITS as readonly string[]).includes(split)) throw new InputError(`unknown visual split ${JSON.stringify(split)}; expected one of ${SPLITS.join(', ')}`);
  return split as Split;
}

/** Builds sample `index` of `task` in `split` (no rendering). Pure function of its arguments. */
export function visualSpec(task: VisualTask, split: Split, seed: number, index: number, opts: ShapesOptions = {}): VisualSpec {
  const info = VISUAL_TASKS[checkTask(task)];
  const rng = sampleRng(seed, info.code, checkSplit(split), index);
  let spec: SceneSpec;
  switch (info.family) {
    case 'shapes': {
      spec = shapesSample(task as ShapeTask, rng, split, opts);
      if (jitterActive(opts.jitter)) spec = jitterScene(spec as SceneSpec<ShapesScene>, sampleRng(seed, 2000 + info.code, split, index), opts.jitter!);
      break;
    }
    case 'text': spec = textSample(task as TextTask, rng, split); break;
    case 'charts': spec = chartSample(task as ChartTask, rng, split); break;
    case 'captions': spec = captionSample(rng, split); break;
    default: spec = info satisfies never;
  }
  return { ...spec, task, family: info.family, split, seed, index };
}

/** Renders one spec. */
export async function renderSpec(spec: VisualSpec, opts: VisualOptions = {}): Promise<VisualSample> {
  const size = opts.size ?? 32;
  const rgb = await renderSvg(spec.svg, size);
  return finish(spec, size, rgb, opts);
}

/** Samples per sharp call when rendering many (see renderSvgs). */
const SHEET = 64;

/** Renders many specs, SHEET per sharp call, at most `concurrency` calls in flight; keeps the order. */
export async function renderSpecs(specs: readonly VisualSpec[], opts: VisualOptions & { concurrency?: number } = {}): Promise<VisualSample[]> {
  const size = opts.size ?? 32;
  const sheets: VisualSpec[][] = [];
  for (let i = 0; i < specs.length; i += SHEET) sheets.push(specs.slice(i, i + SHEET));
  const rendered = await mapLimit(sheets, opts.concurrency ?? 4, (sheet) => renderSvgs(sheet.map((s) => s.svg), size));
  return rendered.flat().map((rgb, i) => finish(specs[i]!, size, rgb, opts));
}

function finish(spec: Omit<VisualSpec, 'svg'>, size: number, rgb: Uint8Array, opts: VisualOptions): VisualSample {
  const image = rgbToChw(rgb, size, size, { mean: opts.mean ?? DEFAULT_MEAN, std: opts.std ?? DEFAULT_STD });
  const { task, family, split, seed, index, question, answer, scene } = spec;
  return { task, family, split, seed, index, question, answer, scene, size, rgb, image };
}

/** Builds and renders sample `index` of one task. */
export async function visualSample(task: VisualTask, split: Split, seed: number, index: number, opts: VisualOptions = {}): Promise<VisualSample> {
  return renderSpec(visualSpec(task, split, seed, index, opts), opts);
}

export interface DatasetOptions extends VisualOptions {
  /** Tasks mixed round robin (default: all). */
  tasks?: readonly VisualTask[];
  split?: Split;
  seed?: number;
  /** Directory for rendered chunks; omitted: no cache. */
  cacheDir?: string;
  /** sharp calls in flight, each rendering up to 64 scenes (default 4). */
  concurrency?: number;
  /**
   * Chunks to render ahead of the newest one asked for (default 0). A training stream reads its
   * chunks in order, so with 1 the next chunk renders on sharp's threads while this one trains;
   * without it the stream waits for every chunk's rendering (0.1–0.2 s of 256 images at 48 pixels).
   */
  prefetch?: number;
}

/** Samples per cache file. */
export const CHUNK = 256;

/** An unlimited, deterministic stream of rendered samples of a task mixture. */
export class VisualDataset {
  readonly tasks: readonly VisualTask[];
  readonly split: Split;
  readonly seed: number;
  readonly size: number;
  private readonly opts: DatasetOptions;
  private readonly cacheKey: string;

  constructor(opts: DatasetOptions = {}) {
    this.tasks = (opts.tasks ?? VISUAL_TASK_NAMES).map((t) => checkTask(t));
    if (this.tasks.length === 0) throw new InputError('VisualDataset: the task list is empty');
    this.split = checkSplit(opts.split ?? 'train');
    this.seed = opts.seed ?? 0;
    this.size = opts.size ?? 32;
    if (!Number.isInteger(this.size) || this.size < 8 || this.size > 1024) throw new InputError(`VisualDataset: size must be an integer in [8, 1024], got ${this.size}`);
    this.opts = opts;
    const key: unknown[] = [this.tasks, opts.maxCount ?? 5];
    if (jitterActive(opts.jitter)) key.push({ jitter: { color: opts.jitter!.color ?? 0, size: opts.jitter!.size ?? 0 } }); // no jitter keeps the key (and cache) of before
    const h = createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 10);
    this.cacheKey = `v2-${this.split}-seed${this.seed}-s${this.size}-${h}`;
  }

  /** The spec of sample i: task tasks[i mod n], its (i div n)-th sample. */
  spec(i: number): VisualSpec {
    const n = this.tasks.length;
    return visualSpec(this.tasks[i % n]!, this.split, this.seed, Math.floor(i / n), this.opts);
  }

  /** Samples [start, start + count), rendered (or read from the cache). */
  async batch(start: number, count: number): Promise<VisualSample[]> {
    if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(count) || count < 0) throw new InputError(`VisualDataset.batch: bad range start=${start} count=${count}`);
    if (!this.opts.cacheDir) {
      return renderSpecs(Array.from({ length: count }, (_, k) => this.spec(start + k)), this.opts);
    }
    const out: VisualSample[] = [];
    for (let c = Math.floor(start / CHUNK); c * CHUNK < start + count; c++) {
      const chunk = await this.chunk(c); // chunk.sample(k) is sample c·CHUNK + k
      const lo = Math.max(start, c * CHUNK), hi = Math.min(start + count, (c + 1) * CHUNK);
      for (let i = lo; i < hi; i++) out.push(chunk.sample(i - c * CHUNK));
    }
    return out;
  }

  /**
   * The chunks last used, newest last (at most RECENT). A training stream asks for a few samples of
   * a chunk per step, so without this each step would read and normalise the whole chunk again.
   */
  private readonly recent = new Map<number, Promise<LoadedChunk>>();

  /** Chunk c (samples [c·CHUNK, (c+1)·CHUNK)): from memory, the cache directory, or rendered. */
  private chunk(c: number): Promise<LoadedChunk> {
    const p = this.keep(c);
    const ahead = this.opts.prefetch ?? 0;
    for (let d = 1; d <= ahead; d++) this.keep(c + d).catch(() => undefined); // a failure is seen when the chunk is asked for
    while (this.recent.size > RECENT + ahead) this.recent.delete(this.recent.keys().next().value!);
    return p;
  }

  /** Chunk c as the newest of the chunks kept, loading it if it is not kept. */
  private keep(c: number): Promise<LoadedChunk> {
    let p = this.recent.get(c);
    if (p) this.recent.delete(c); // re-inserted below as the newest
    else {
      const loading = this.loadChunk(c);
      loading.catch(() => { if (this.recent.get(c) === loading) this.recent.delete(c); }); // a failed load is not kept; the caller sees the error
      p = loading;
    }
    this.recent.set(c, p);
    return p;
  }

  /** Renders chunk c or loads it from the cache directory. */
  private async loadChunk(c: number): Promise<LoadedChunk> {
    const dir = join(this.opts.cacheDir!, this.cacheKey);
    const bin = join(dir, `chunk-${c}.rgb`), meta = join(dir, `chunk-${c}.json`);
    const S = this.size, per = S * S * 3;
    if (existsSync(bin) && existsSync(meta)) {
      let specs: Omit<VisualSpec, 'svg'>[] | null = null;
      try { specs = JSON.parse(readFileSync(meta, 'utf8')); } catch { /* damaged: re-rendered below */ }
      const bytes = readFileSync(bin);
      if (Array.isArray(specs) && specs.length === CHUNK && bytes.byteLength === CHUNK * per) {
        const kept = specs;
        // Normalised on first use only: a step needs a few samples of the chunk.
        const done: (VisualSample | undefined)[] = new Array(CHUNK);
        return {
          sample: (k) => (done[k] ??= finish(kept[k]!, S, new Uint8Array(bytes.buffer, bytes.byteOffset + k * per, per).slice(), this.opts)),
        };
      }
      // A damaged cache entry is re-rendered below and overwritten.
    }
    const specs = Array.from({ length: CHUNK }, (_, k) => this.spec(c * CHUNK + k));
    const samples = await renderSpecs(specs, this.opts);
    // A cache, not state: replaced whole (rename) but not flushed to disk (fsync cost 8 ms a
    // chunk); an entry a crash damaged fails the checks above and is rendered again. The
    // metadata is renamed last, so an entry is complete once it exists.
    writeFileReplacing(bin, samples.map((s) => s.rgb));
    writeFileReplacing(meta, JSON.stringify(specs.map(({ svg: _svg, ...rest }) => rest)));
    return { sample: (k) => samples[k]! };
  }
}

/** Chunks a VisualDataset keeps in memory (a batch can straddle two). */
const RECENT = 2;

/** A chunk in memory: sample k of it. The same object is returned for the same k. */
interface LoadedChunk { sample(k: number): VisualSample }

/** A question and its answer. */
export interface QA { question: string; answer: string }

/**
 * Up to `k` follow-up questions about a sample's image, for multi-turn training conversations
 * (several answers per encoded image): other questions of the tasks in `tasks` that its scene
 * answers (shapes: shapesQuestions; charts: chartQuestions; text and captions have none), never the
 * sample's own question, drawn without repeats by a generator of (seed, task, split, index) — a
 * pure function of the sample, separate from the stream that built it.
 */
export function followUps(s: Pick<VisualSample, 'task' | 'family' | 'split' | 'seed' | 'index' | 'scene' | 'question'>, tasks: readonly VisualTask[], k: number, opts: ShapesOptions = {}): QA[] {
  if (k <= 0) return [];
  const allowed = new Set<string>(tasks);
  const all = s.family === 'shapes' ? shapesQuestions(s.scene as ShapesScene, opts) : s.family === 'charts' ? chartQuestions(s.scene as ChartScene) : [];
  const pool = all.filter((q) => allowed.has(q.task) && q.question !== s.question);
  const rng = sampleRng(s.seed, 1000 + VISUAL_TASKS[s.task].code, s.split, s.index);
  rng.shuffle(pool);
  return pool.slice(0, k).map(({ question, answer }) => ({ question, answer }));
}
