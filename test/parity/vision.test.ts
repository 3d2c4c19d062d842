/**
 * Parity of the vision path with PyTorch: the same weights in an independent implementation
 * (test/parity/vit_parity.py: patches by F.unfold, written-out attention, the GPT of
 * gpt_parity.py) give the same image embeddings, logits with images spliced in, loss, and
 * gradients of every weight — vision encoder and projector included (relative error <= 1e-4).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Tensor, Rng, noGrad, currentBackend } from '../../src/tensor/index.ts';
import { MODEL_PRESETS } from '../../src/models/config.ts';
import { MultimodalModel, saveMultimodal, type MultimodalConfig, type MMBatch } from '../../src/models/multimodal.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { torchAvailable, runPython, relErr } from './torch.ts';

const base = MODEL_PRESETS.tiny!;
const CONFIGS: Record<string, MultimodalConfig> = {
  'gpt2-style LM, 2-layer ViT': {
    model: { ...base, vocabSize: 40, contextLength: 32, width: 32, heads: 4, kvHeads: 4, layers: 2 },
    vision: { imageSize: 12, patchSize: 4, width: 24, layers: 2, heads: 3, mlpRatio: 2 },
  },
  'llama-style LM (rope, rmsnorm, swiglu, gqa), 1-layer ViT': {
    model: { ...base, vocabSize: 40, contextLength: 48, width: 32, heads: 4, kvHeads: 2, layers: 2, activation: 'swiglu', norm: 'rmsnorm', positions: 'rope', tiedEmbeddings: false, bias: false },
    vision: { imageSize: 8, patchSize: 2, width: 16, layers: 1, heads: 2, mlpRatio: 4 },
  },
  'gpt2-style LM, ViT with patch statistics and per-channel patch norm': {
    model: { ...base, vocabSize: 40, contextLength: 32, width: 32, heads: 4, kvHeads: 4, layers: 1 },
    vision: { imageSize: 12, patchSize: 4, width: 24, layers: 1, heads: 3, mlpRatio: 2, patchStats: true, patchNorm: 'channel' },
  },
};

const skip = torchAvailable() ? false : 'PyTorch not installed for /usr/bin/python3 (apt-get install python3-torch)';

/** Two sequences: the first with two images around text, the second with one; image ids 0, pad 1. */
function makeBatch(cfg: MultimodalConfig, M: number, rng: Rng): MMBatch {
  const T = 2 * M + 10, B = 2, S = cfg.vision.imageSize, V = cfg.model.vocabSize;
  const ids = Int32Array.from({ length: B * T }, () => 2 + rng.int(V - 2));
  const positions: number[] = [];
  const slot = (b: number, start: number) => { for (let j = 0; j < M; j++) { positions.push(b * T + start + j); ids[b * T + start + j] = 0; } };
  slot(0, 2); slot(0, M + 6); slot(1, 4);
  const targets = Int32Array.from({ length: B * T }, (_, i) => (positions.includes(i) || i % 5 === 1 ? -100 : rng.int(V)));
  const pixels = Float32Array.from({ length: 3 * 3 * S * S }, () => rng.uniform() * 2 - 1);
  return { B, T, ids, targets, imagePositions: Int32Array.from(positions), pixels, nImages: 3 };
}

for (const [label, cfg] of Object.entries(CONFIGS)) {
  test(`PyTorch parity, vision path: ${label}`, { skip }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'lumen-vparity-'));
    const model = new MultimodalModel(cfg, 17);
    saveMultimodal(dir, model);
    const batch = makeBatch(cfg, model.imageTokens, new Rng(3));
    const S = cfg.vision.imageSize;
    writeSafetensors(join(dir, 'inputs.safetensors'), {
      ids: { shape: [batch.B, batch.T], data: batch.ids }, targets: { shape: [batch.B, batch.T], data: batch.targets },
      pixels: { shape: [batch.nImages, 3, S, S], data: batch.pixels }, image_positions: { shape: [batch.imagePositions.length], data: batch.imagePositions },
    });
    const emb = noGrad(() => model.encodeImages(Tensor.from(batch.pixels, [batch.nImages, 3, S, S])).toArray());
    const logits = noGrad(() => model.forward(batch).toArray());
    // Lumen's loss gathers the target rows before the output head; PyTorch takes the full logits.
    const loss = model.loss(batch);
    loss.backward();
    runPython('test/parity/vit_parity.py', [dir, '2']);
    const ref = readSafetensors(join(dir, 'torch_out.safetensors')).tensors;
    const tol = 1e-4;
    assert.ok(relErr(emb, ref.get('image_embeds')!.data) < tol, `image embeddings rel err ${relErr(emb, ref.get('image_embeds')!.data)}`);
    assert.ok(relErr(logits, ref.get('logits')!.data) < tol, `logits rel err ${relErr(logits, ref.get('logits')!.data)}`);
    const l = ref.get('loss')!.data[0]!;
    assert.ok(Math.abs(loss.item() - l) / l < tol, `loss ${loss.item()} vs ${l}`);
    // Errors against max(|reference|, 1e-3 × the largest gradient), as in gpt.test.ts (some gradients
    // are zero in exact arithmetic, e.g. key-projection biases, and only rounding noise remains).
    const params = model.params();
    const floor = 1e-3 * Math.max(...params.map((p) => Math.max(...Array.from(ref.get(`grad.${p.name}`)!.data, Math.abs))));
    let vision = 0;
    for (const p of params) {
      const e = relErr(p.tensor.grad!.toArray(), ref.get(`grad.${p.name}`)!.data, floor);
      assert.ok(e < tol, `grad ${p.name}: rel err ${e} (${currentBackend().name})`);
      if (p.name.startsWith('vision.') || p.name.startsWith('projector.')) vision++;
    }
    assert.equal(vision, model.vit.params().length + model.projector.params().length);
  });
}
