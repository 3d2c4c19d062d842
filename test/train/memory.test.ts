/**
 * Memory stays flat over 200 training steps: every step allocates its activations and
 * gradients anew, and nothing may keep them alive afterwards (graph nodes are released by
 * backward, gradients are dropped by zeroGrad).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Tensor, Rng } from '../../src/tensor/index.ts';
import { GPT } from '../../src/models/gpt.ts';
import { MODEL_PRESETS } from '../../src/models/config.ts';
import { AdamW } from '../../src/train/optimizer.ts';

v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;

function used(): number {
  gc(); gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

test('memory stays flat over 200 training steps', () => {
  const cfg = { ...MODEL_PRESETS.tiny!, vocabSize: 64, contextLength: 32, width: 32, heads: 4, kvHeads: 4, layers: 2, dropout: 0.1 };
  const model = new GPT(cfg, 1);
  model.training = true;
  const opt = new AdamW(model.params(), { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1 });
  const rng = new Rng(3);
  const step = (s: number) => {
    const ids = Tensor.from(Int32Array.from({ length: 4 * 32 }, () => rng.int(64)), [4, 32]);
    const tg = Tensor.from(Int32Array.from({ length: 4 * 32 }, () => rng.int(64)), [4, 32]);
    model.loss(ids, tg, { dropoutSeed: s }).backward();
    opt.update(1e-3);
    opt.zeroGrad();
  };
  for (let s = 0; s < 20; s++) step(s);
  const before = used();
  for (let s = 20; s < 220; s++) step(s);
  const after = used();
  // One step's activations for this model are ~1 MB; a leak of one step per step would add ~200 MB.
  assert.ok(after - before < 2 * 1024 * 1024, `memory grew by ${((after - before) / 1048576).toFixed(2)} MB over 200 steps`);
});
