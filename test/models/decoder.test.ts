import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, referenceBackend, withBackend, noGrad, Rng } from '../../src/tensor/index.ts';
import { GPT } from '../../src/models/gpt.ts';
import { Decoder } from '../../src/models/decoder.ts';
import { MODEL_PRESETS, type GPTConfig } from '../../src/models/config.ts';
import { sampleToken } from '../../src/models/sampling.ts';

const cfgs: GPTConfig[] = [
  { ...MODEL_PRESETS.tiny!, vocabSize: 40, contextLength: 24, width: 32, heads: 4, kvHeads: 4, layers: 2 },
  { ...MODEL_PRESETS.tiny!, vocabSize: 40, contextLength: 24, width: 32, heads: 4, kvHeads: 2, layers: 2, positions: 'rope', activation: 'swiglu', norm: 'rmsnorm', tiedEmbeddings: false },
];

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length);
  let md = 0;
  for (let i = 0; i < a.length; i++) md = Math.max(md, Math.abs(a[i]! - b[i]!));
  assert.ok(md < tol, `${what}: max diff ${md}`);
}

test('incremental decoding with a KV cache gives the logits of a full forward pass', () => {
  withBackend(referenceBackend(), () => {
    for (const cfg of cfgs) {
      const m = new GPT(cfg, 11);
      const dec = new Decoder(m);
      const rng = new Rng(2);
      const seqA = Array.from({ length: 9 }, () => rng.int(40)), seqB = Array.from({ length: 5 }, () => rng.int(40));
      const full = (s: number[]) => noGrad(() => m.forward(Tensor.from(Int32Array.from(s), [1, s.length]))).toArray();
      const fa = full(seqA), fb = full(seqB);
      const ca = dec.newCache(), cb = dec.newCache();
      // prefill A (all logits) and B together, then decode token by token, batched
      const [pa, pb] = dec.step([{ cache: ca, tokens: seqA.slice(0, 6), allLogits: true }, { cache: cb, tokens: seqB.slice(0, 2) }]);
      close(pa!, fa.slice(0, 6 * 40), 1e-5, 'prefill all logits');
      close(pb!, fb.slice(40, 80), 1e-5, 'prefill last logits');
      for (let t = 6; t < 9; t++) {
        const items = [{ cache: ca, tokens: [seqA[t]!] }, ...(t - 4 < 5 ? [{ cache: cb, tokens: [seqB[t - 4]!] }] : [])];
        const outs = dec.step(items);
        close(outs[0]!, fa.slice(t * 40, (t + 1) * 40), 1e-5, `decode A@${t}`);
        if (outs[1]) close(outs[1], fb.slice((t - 4) * 40, (t - 3) * 40), 1e-5, `decode B@${t - 4}`);
      }
    }
  });
});

test('spliced embeddings in decoding match the training-time splice', () => {
  withBackend(referenceBackend(), () => {
    const cfg = cfgs[0]!;
    const m = new GPT(cfg, 4);
    const rng = new Rng(9);
    const emb = Float32Array.from({ length: 2 * 32 }, () => rng.normal());
    const ids = [3, 7, 7, 9, 1];
    const full = noGrad(() => m.forward(Tensor.from(Int32Array.from(ids), [1, 5]), { splice: { index: Int32Array.from([1, 2]), values: Tensor.from(emb, [2, 32]) } })).toArray();
    const dec = new Decoder(m), cache = dec.newCache();
    const [out] = dec.step([{ cache, tokens: ids, allLogits: true, embeds: [{ index: 1, values: emb.slice(0, 32) }, { index: 2, values: emb.slice(32) }] }]);
    close(out!, full, 1e-5, 'splice');
  });
});

test('sampling: greedy, seeded reproducibility, top-k restricts the support', () => {
  const logits = Float32Array.from([0.1, 2.0, 1.5, -1, 0.3]);
  assert.equal(sampleToken(logits, { temperature: 0 }, new Rng(1)), 1);
  const draw = (seed: number) => Array.from({ length: 20 }, (_, i) => sampleToken(logits, { temperature: 1 }, new Rng(seed + i)));
  assert.deepEqual(draw(5), draw(5));
  const r = new Rng(3);
  for (let i = 0; i < 200; i++) assert.ok([1, 2].includes(sampleToken(logits, { temperature: 1.5, topK: 2 }, r)));
  for (let i = 0; i < 200; i++) assert.equal(sampleToken(logits, { temperature: 1, topP: 0.3 }, r), 1);
});
