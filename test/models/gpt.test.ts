import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, referenceBackend, withBackend, noGrad, Rng } from '../../src/tensor/index.ts';
import { GPT } from '../../src/models/gpt.ts';
import { MODEL_PRESETS, paramCount, parseGPTConfig, type GPTConfig } from '../../src/models/config.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { InputError } from '../../src/util/errors.ts';

const tinyCfg = (over: Partial<GPTConfig> = {}): GPTConfig => ({ ...MODEL_PRESETS.tiny!, vocabSize: 32, contextLength: 16, width: 32, heads: 4, kvHeads: 4, ...over });

test('parameter count matches the tensors the model allocates', () => {
  for (const over of [{}, { activation: 'swiglu', norm: 'rmsnorm', positions: 'rope', kvHeads: 2, bias: false, tiedEmbeddings: false } as const]) {
    const cfg = tinyCfg(over);
    const m = withBackend(referenceBackend(), () => new GPT(cfg, 1));
    const n = m.params().reduce((s, p) => s + p.tensor.size, 0);
    assert.equal(n, paramCount(cfg));
  }
});

test('config validation names the bad fields', () => {
  assert.throws(() => parseGPTConfig({ ...tinyCfg(), width: 30 }, 'x.json'), (e: unknown) => e instanceof InputError && /width 30 must be divisible by heads 4/.test(e.message));
  assert.throws(() => parseGPTConfig({ ...tinyCfg(), layers: 0, bogus: 1 }, 'x.json'), (e: unknown) => e instanceof InputError && /layers/.test(e.message) && /bogus/.test(e.message));
});

test('a tiny GPT learns a repeating sequence (loss falls) on the reference backend', () => {
  withBackend(referenceBackend(), () => {
    for (const over of [{}, { activation: 'swiglu', norm: 'rmsnorm', positions: 'rope', kvHeads: 2 } as const]) {
      const cfg = tinyCfg(over);
      const m = new GPT(cfg, 3);
      m.training = true;
      const opt = new AdamW(m.params(), { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1 });
      const seq = Array.from({ length: 17 }, (_, i) => (i * 5) % 11);
      const ids = Tensor.from(Int32Array.from(seq.slice(0, 16)), [1, 16]);
      const tg = Tensor.from(Int32Array.from(seq.slice(1)), [1, 16]);
      let first = 0, last = 0;
      for (let s = 0; s < 30; s++) {
        const loss = m.loss(ids, tg);
        if (s === 0) first = loss.item();
        last = loss.item();
        loss.backward();
        opt.update(1e-2);
        opt.zeroGrad();
      }
      assert.ok(first > 2.5 && last < 0.5 * first, `loss ${first} → ${last}`);
    }
  });
});

test('spliced embeddings replace token embeddings and receive gradients', () => {
  withBackend(referenceBackend(), () => {
    const cfg = tinyCfg();
    const m = new GPT(cfg, 5);
    const ids = Tensor.from(Int32Array.from([1, 2, 3, 4]), [1, 4]);
    const rng = new Rng(1);
    const vals = Tensor.param(Float32Array.from({ length: 2 * 32 }, () => rng.normal()), [2, 32]);
    const base = noGrad(() => m.forward(ids)).toArray();
    const out = m.forward(ids, { splice: { index: Int32Array.from([1, 2]), values: vals } });
    const o = out.toArray();
    // position 0 only sees itself: unchanged; positions 1.. see the spliced rows: changed
    for (let j = 0; j < 32; j++) assert.equal(o[j], base[j]);
    assert.notEqual(o[32 * 2], base[32 * 2]);
    const tg = Tensor.from(Int32Array.from([2, 3, 4, 5]), [1, 4]);
    m.loss(ids, tg, { splice: { index: Int32Array.from([1, 2]), values: vals } }).backward();
    assert.ok(vals.grad && vals.grad.toArray().some((g) => g !== 0));
  });
});
