import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, referenceBackend, withBackend, currentBackend, noGrad, Rng, ops } from '../../src/tensor/index.ts';
import '../../src/tensor/backends/native.ts';
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

test('hiddenAt: the last block at chosen rows gives the rows of the full forward and the same gradients', () => {
  for (const be of [referenceBackend(), currentBackend()]) withBackend(be, () => {
    for (const over of [{}, { activation: 'swiglu', norm: 'rmsnorm', positions: 'rope', kvHeads: 2, bias: false, tiedEmbeddings: false } as const]) {
      const cfg = tinyCfg({ ...over, layers: 2 });
      const B = 4, T = 9, rng = new Rng(11);
      const ids = Tensor.from(Int32Array.from({ length: B * T }, () => rng.int(cfg.vocabSize)), [B, T]);
      // Sequence 0: three rows at the end; 1: none; 2: position 0 and one more; 3: one row.
      const rows = Int32Array.from([5, 6, 7, 2 * T, 2 * T + 4, 3 * T + 8]);
      const targets = Tensor.from(Int32Array.from(rows, (r) => (r * 7) % cfg.vocabSize), [rows.length]);
      const run = (fast: boolean) => {
        const m = new GPT(cfg, 4);
        m.training = true;
        const h = fast ? m.hiddenAt(ids, rows) : ops.embedding(ops.reshape(m.hidden(ids), [B * T, cfg.width]), Tensor.from(rows, [rows.length]));
        ops.crossEntropy(m.logits(h), targets).backward();
        return { h: h.toArray(), grads: m.params().map((p) => [p.name, p.tensor.grad?.toArray() ?? null] as const) };
      };
      const full = run(false), fast = run(true);
      assert.equal(fast.h.length, rows.length * cfg.width);
      fast.h.forEach((x, i) => assert.ok(Math.abs(x - full.h[i]!) <= 1e-5 * (1 + Math.abs(full.h[i]!)), `${be.name} hidden[${i}]: ${x} vs ${full.h[i]}`));
      full.grads.forEach(([name, g], j) => {
        const f = fast.grads[j]![1];
        assert.ok(g && f, `${name}: gradient missing`);
        let scale = 0;
        for (const x of g) scale = Math.max(scale, Math.abs(x));
        assert.ok(scale > 0, `${name}: zero gradient`);
        g.forEach((x, i) => assert.ok(Math.abs(x - f[i]!) <= 1e-4 * scale, `${be.name} ${name}[${i}]: ${f[i]} vs ${x}`));
      });
    }
    const m = new GPT(tinyCfg(), 1);
    const ids = Tensor.from(new Int32Array(2 * 4), [2, 4]);
    assert.throws(() => m.hiddenAt(ids, Int32Array.from([3, 2])), /strictly increasing/);
    assert.throws(() => m.hiddenAt(ids, Int32Array.from([8])), /strictly increasing flat indices in \[0, 8\)/);
  });
});
