/**
 * An auxiliary training loss for the multimodal model (config `objectLoss`): from each image
 * position's embedding as the language model receives it (the projector's output), linear heads
 * predict the colour, shape and size of the object whose centre lies in that position's patch, or
 * "none". Only images of the shapes family have these labels (their scene lists every object);
 * other images add nothing.
 *
 * Why: the language model answers "what shape is the red object?" by attending to the image
 * position whose key matches "red" and reading its shape. If the image embeddings encode colour and
 * shape entangled, a colour–shape pair never seen in training (the compositional split) may match
 * neither, and the model reads another object. Heads that are linear, and shared across every
 * colour–shape pair, push the embeddings towards a colour direction and a shape direction that
 * hold for any pair. The labels come from the scene generator (dense supervision of the synthetic
 * data); the held-out pairs never appear in training, so the heads never see them either.
 *
 * The heads are a training-time device: they live in the trainer's state (state.safetensors, as
 * `probe.*`, with their AdamW moments) for exact resume, and are not part of model.safetensors.
 */
import { Tensor, Rng } from '../tensor/index.ts';
import * as ops from '../tensor/ops.ts';
import { Linear, type Param } from '../nn/layers.ts';
import { COLOR_NAMES, SHAPES, SIZES, type VisualSample } from '../data/visual/index.ts';
import type { ShapesScene } from '../data/visual/shapes.ts';

/** The attributes predicted per patch, each with its classes (class 0 of each head is "no object"). */
export const PROBE_HEADS = { color: COLOR_NAMES, shape: SHAPES, size: SIZES } as const;
type Head = keyof typeof PROBE_HEADS;
const HEADS = Object.keys(PROBE_HEADS) as Head[];

/** Per-patch labels of a batch's images: for each head, (N·M) class ids, or -1 for unlabelled images. */
export interface ProbeLabels {
  /** Image positions with a label (row n·M + m of the (N·M, C) embeddings). */
  rows: number[];
  /** For each head, the class of each labelled row (0 = no object centred in the patch). */
  classes: Record<Head, number[]>;
}

/**
 * Labels of the images of `samples` (one image per sample, in order) on a grid×grid patch grid:
 * a patch's label is the object whose centre (in the scene's 100×100 units) falls in the patch.
 * Samples of other families are skipped.
 */
export function probeLabels(samples: readonly Pick<VisualSample, 'family' | 'scene'>[], grid: number): ProbeLabels {
  const M = grid * grid, rows: number[] = [];
  const classes = { color: [], shape: [], size: [] } as Record<Head, number[]>;
  samples.forEach((s, n) => {
    if (s.family !== 'shapes') return;
    const at = new Map<number, ShapesScene['objects'][number]>();
    for (const o of (s.scene as ShapesScene).objects) {
      const cell = (v: number) => Math.min(grid - 1, Math.max(0, Math.floor((v / 100) * grid)));
      at.set(cell(o.cy) * grid + cell(o.cx), o);
    }
    for (let m = 0; m < M; m++) {
      const o = at.get(m);
      rows.push(n * M + m);
      for (const h of HEADS) classes[h].push(o ? (PROBE_HEADS[h] as readonly string[]).indexOf(o[h]) + 1 : 0);
    }
  });
  return { rows, classes };
}

/** The linear heads and their loss. */
export class ObjectProbe {
  private readonly heads: Record<Head, Linear>;

  constructor(width: number, seed: number, std = 0.02) {
    const rng = new Rng((seed ^ 0x9b0be) >>> 0);
    this.heads = Object.fromEntries(HEADS.map((h) => [h, new Linear(`probe.${h}`, width, PROBE_HEADS[h].length + 1, { bias: true, std, rng })])) as Record<Head, Linear>;
  }

  params(): Param[] {
    return HEADS.flatMap((h) => this.heads[h].params(false));
  }

  namedTensors(): Map<string, Tensor> {
    return new Map(this.params().map((p) => [p.name, p.tensor]));
  }

  /**
   * Mean over heads of the mean cross-entropy over labelled positions; `emb` is (N, M, C) image
   * embeddings. Null when no image of the batch has labels.
   */
  loss(emb: Tensor, labels: ProbeLabels): Tensor | null {
    if (labels.rows.length === 0) return null;
    const x = labelledRows(emb, labels);
    let total: Tensor | null = null;
    for (const h of HEADS) {
      const ce = ops.crossEntropy(this.heads[h].forward(x), Tensor.from(Int32Array.from(labels.classes[h]), [labels.rows.length], emb.backend));
      total = total ? ops.add(total, ce) : ce;
    }
    return ops.scalar('mul', total!, 1 / HEADS.length);
  }

  /** Accuracy of each head on the labelled positions (for tests and logs). */
  accuracy(emb: Tensor, labels: ProbeLabels): Record<Head, number> {
    const x = labelledRows(emb, labels);
    const out = {} as Record<Head, number>;
    for (const h of HEADS) {
      const K = PROBE_HEADS[h].length + 1, lg = this.heads[h].forward(x).toArray();
      let right = 0;
      labels.classes[h].forEach((c, r) => {
        let best = 0;
        for (let k = 1; k < K; k++) if (lg[r * K + k]! > lg[r * K + best]!) best = k;
        if (best === c) right++;
      });
      out[h] = right / Math.max(1, labels.rows.length);
    }
    return out;
  }
}

/** The labelled positions' embeddings (n, C), gathered from (N, M, C). */
function labelledRows(emb: Tensor, labels: ProbeLabels): Tensor {
  const [N, M, C] = emb.shape as [number, number, number];
  return ops.embedding(ops.reshape(emb, [N * M, C]), Tensor.from(Int32Array.from(labels.rows), [labels.rows.length], emb.backend));
}
