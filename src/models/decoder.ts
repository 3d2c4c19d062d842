/**
 * Incremental decoding with a KV cache, batched across sequences of different lengths.
 *
 * One `step` appends new inputs to several sequences at once: every linear layer runs as one
 * GEMM over all new rows of all sequences; attention runs per sequence against that sequence's
 * cache (keys/values of all earlier positions, read in place), all sequences in one backend call
 * (`attentionDecode`). The result equals a full
 * forward pass over each whole sequence (tested), at a cost proportional to the new tokens.
 */
import { Tensor, noGrad, inStep } from '../tensor/index.ts';
import type { Buf } from '../tensor/backend.ts';
import * as ops from '../tensor/ops.ts';
import type { GPT } from './gpt.ts';
import { headDim } from './config.ts';
import { OpError } from '../util/errors.ts';

/** Keys and values of one sequence, per layer: (capacity, Hkv, D) each. */
export class KVCache {
  readonly k: Buf[];
  readonly v: Buf[];
  length = 0;
  constructor(model: GPT, readonly capacity: number) {
    const c = model.config, be = model.wte.backend, n = capacity * c.kvHeads * headDim(c);
    this.k = model.blocks.map(() => be.alloc('float32', n));
    this.v = model.blocks.map(() => be.alloc('float32', n));
  }
}

export interface DecodeItem {
  cache: KVCache;
  tokens: number[];
  /** Rows to splice in place of token embeddings: (index within `tokens`, embedding of width C). */
  embeds?: { index: number; values: Float32Array }[];
  /** Return logits for every new position, not only the last. */
  allLogits?: boolean;
}

export class Decoder {
  constructor(readonly model: GPT) {}

  newCache(capacity = this.model.config.contextLength): KVCache {
    return new KVCache(this.model, capacity);
  }

  /** Appends each item's tokens to its cache; returns logits per item ((rows, V) row-major). */
  step(items: DecodeItem[]): Float32Array[] {
    const m = this.model, c = m.config, be = m.wte.backend;
    const D = headDim(c), C = c.width, Hq = c.heads, Hkv = c.kvHeads;
    const total = items.reduce((s, it) => s + it.tokens.length, 0);
    for (const it of items) {
      if (it.tokens.length === 0) throw new OpError('decode', 'an item has no new tokens');
      if (it.cache.length + it.tokens.length > Math.min(it.cache.capacity, c.contextLength)) {
        throw new OpError('decode', `sequence of ${it.cache.length + it.tokens.length} positions exceeds the context length ${Math.min(it.cache.capacity, c.contextLength)}`);
      }
    }
    // Everything allocated here is garbage once the logits are on the host (the caches were
    // allocated before): one step scope gives it back to the buffer pool at once.
    return inStep(be, () => noGrad(() => {
      const ids = new Int32Array(total), pos = new Int32Array(total);
      let r = 0;
      for (const it of items) for (let i = 0; i < it.tokens.length; i++, r++) { ids[r] = it.tokens[i]!; pos[r] = it.cache.length + i; }
      // Spliced rows (image embeddings) are appended to the table and their positions point at them.
      const extra: Float32Array[] = [];
      r = 0;
      for (const it of items) {
        for (const e of it.embeds ?? []) {
          if (e.values.length !== C) throw new OpError('decode', `spliced embedding has ${e.values.length} values, expected ${C}`);
          if (e.index < 0 || e.index >= it.tokens.length) throw new OpError('decode', `splice index ${e.index} outside the ${it.tokens.length} new tokens`);
          ids[r + e.index] = c.vocabSize + extra.length;
          extra.push(e.values);
        }
        r += it.tokens.length;
      }
      const idsT = Tensor.from(ids, [1, total], be), posT = Tensor.from(pos, [1, total], be);
      let table = m.wte;
      if (extra.length > 0) {
        const vals = new Float32Array(extra.length * C);
        extra.forEach((e, j) => vals.set(e, j * C));
        table = ops.concat([m.wte, Tensor.from(vals, [extra.length, C], be)], 0);
      }
      const layerItems = m.blocks.map((_, l) => {
        let row = 0;
        return items.map((it) => {
          const r = { kCache: it.cache.k[l]!, vCache: it.cache.v[l]!, row, n: it.tokens.length, start: it.cache.length };
          row += it.tokens.length;
          return r;
        });
      });
      let x = ops.embedding(table, idsT);
      if (m.wpe) x = ops.add(x, ops.embedding(m.wpe, posT));
      for (let l = 0; l < m.blocks.length; l++) {
        const b = m.blocks[l]!;
        const h = b.ln1.forward(x);
        let q = ops.reshape(b.q.forward(h), [1, total, Hq, D]);
        let k = ops.reshape(b.k.forward(h), [1, total, Hkv, D]);
        const v = ops.reshape(b.v.forward(h), [1, total, Hkv, D]);
        if (c.positions === 'rope') { q = ops.rope(q, posT, c.ropeBase); k = ops.rope(k, posT, c.ropeBase); }
        // every sequence's new k, v rows into its cache, and its queries against the cache: one call
        const att = new Tensor(be.empty('float32', total * Hq * D), [1, total, Hq, D], be);
        be.attentionDecode({ q: q.buf, k: k.buf, v: v.buf, out: att.buf, lse: be.empty('float32', total * Hq), items: layerItems[l]!,
          Hq, Hkv, D, scale: m.attnScale });
        x = ops.add(x, b.o.forward(ops.reshape(att, [1, total, C])));
        const h2 = b.ln2.forward(x);
        const mm = b.gate ? ops.mul(ops.silu(b.gate.forward(h2)), b.up.forward(h2)) : ops.gelu(b.up.forward(h2));
        x = ops.add(x, b.down.forward(mm));
      }
      for (const it of items) it.cache.length += it.tokens.length;
      // Only the rows whose logits are wanted go through the final norm and the output head.
      const want: number[] = [];
      r = 0;
      for (const it of items) {
        if (it.allLogits) for (let i = 0; i < it.tokens.length; i++) want.push(r + i);
        else want.push(r + it.tokens.length - 1);
        r += it.tokens.length;
      }
      const sel = Tensor.zeros([want.length, C], 'float32', be);
      want.forEach((src, j) => be.stridedCopy(x.buf, src * C, [1], sel.buf, j * C, [1], [C], false));
      const logits = m.logits(m.lnF.forward(sel)).toArray() as Float32Array;
      const V = c.vocabSize;
      const out: Float32Array[] = [];
      let w = 0;
      for (const it of items) {
        const rows = it.allLogits ? it.tokens.length : 1;
        out.push(logits.slice(w * V, (w + rows) * V));
        w += rows;
      }
      return out;
    }));
  }
}
