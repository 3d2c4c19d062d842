/**
 * Memory stays flat over 200 training steps: every step allocates its activations and
 * gradients anew, and nothing may keep them alive afterwards (graph nodes are released by
 * backward, gradients are dropped by zeroGrad). The loop yields to the event loop once a step, as
 * the training loops do, so the native backend's buffer pool takes back (and reuses) the storage
 * of dead tensors. What the pool keeps for reuse is a bounded cache, not a leak: it is subtracted
 * from the measurement and checked against its cap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Tensor, Rng, currentBackend } from '../../src/tensor/index.ts';
import type { BufferPool } from '../../src/tensor/backends/cpu-buf.ts';
import { GPT } from '../../src/models/gpt.ts';
import { MODEL_PRESETS } from '../../src/models/config.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { yieldToEventLoop } from '../../src/util/event-loop.ts';

v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;

const pool = (currentBackend() as { pool?: BufferPool }).pool;

async function used(): Promise<number> {
  for (let i = 0; i < 3; i++) { gc(); await yieldToEventLoop(); }
  const m = process.memoryUsage();
  if (pool) assert.ok(pool.pooledBytes <= pool.capBytes);
  return m.heapUsed + m.arrayBuffers - (pool?.pooledBytes ?? 0);
}

test('memory stays flat over 200 training steps', async () => {
  const cfg = { ...MODEL_PRESETS.tiny!, vocabSize: 64, contextLength: 32, width: 32, heads: 4, kvHeads: 4, layers: 2, dropout: 0.1 };
  const model = new GPT(cfg, 1);
  model.training = true;
  const opt = new AdamW(model.params(), { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1 });
  const rng = new Rng(3);
  const step = async (s: number) => {
    await yieldToEventLoop();
    const ids = Tensor.from(Int32Array.from({ length: 4 * 32 }, () => rng.int(64)), [4, 32]);
    const tg = Tensor.from(Int32Array.from({ length: 4 * 32 }, () => rng.int(64)), [4, 32]);
    model.loss(ids, tg, { dropoutSeed: s }).backward();
    opt.update(1e-3);
    opt.zeroGrad();
  };
  for (let s = 0; s < 20; s++) await step(s);
  const before = await used();
  for (let s = 20; s < 220; s++) await step(s);
  const after = await used();
  // One step's activations for this model are ~1 MB; a leak of one step per step would add ~200 MB.
  assert.ok(after - before < 2 * 1024 * 1024, `memory grew by ${((after - before) / 1048576).toFixed(2)} MB over 200 steps`);
});
