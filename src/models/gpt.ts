/**
 * A decoder-only Transformer (GPT) built from a validated config: GELU or SwiGLU MLP,
 * LayerNorm or RMSNorm, learned or rotary positions, grouped-query attention, tied or separate
 * output embedding, dropout, optional biases, standard or maximal-update (muP) parametrization.
 *
 * Shapes: B batch, T time, C width, H heads, Hkv key/value heads, D = C/H, V vocabulary.
 * Tensor names follow Hugging Face's Llama scheme (see `paramNames` and docs in README).
 */
import { Tensor, Rng, currentBackend } from '../tensor/index.ts';
import * as ops from '../tensor/ops.ts';
import { Linear, Norm, normalInit, param, type Param } from '../nn/layers.ts';
import { type GPTConfig, headDim, mlpHidden, paramCount, flopsPerToken } from './config.ts';
import { OpError } from '../util/errors.ts';

export interface Block {
  ln1: Norm; q: Linear; k: Linear; v: Linear; o: Linear;
  ln2: Norm; up: Linear; gate: Linear | null; down: Linear;
}

/** Embeddings to splice in at given flat positions of the (B, T) input (e.g. image patches). */
export interface Splice {
  /** Flat indices b*T + t of the positions to replace, length n. */
  index: Int32Array;
  /** (n, C) embeddings, may carry gradients (the vision projector's output). */
  values: Tensor;
}

export interface ForwardOptions {
  /** int32 (B, T) absolute positions; default 0..T-1 for every row. */
  positions?: Tensor;
  splice?: Splice;
  /** Additive attention mask (B|1, 1, T, T), e.g. to keep packed conversations apart. Causality is always applied. */
  mask?: Tensor | null;
  /** Dropout seed for this step (training with dropout > 0). */
  dropoutSeed?: number;
}

export class GPT {
  readonly wte: Tensor;
  readonly wpe: Tensor | null;
  readonly blocks: Block[] = [];
  readonly lnF: Norm;
  readonly lmHead: Tensor | null;
  training = false;

  constructor(readonly config: GPTConfig, seed = 0) {
    const c = config, rng = new Rng(seed);
    const mup = c.parametrization === 'mup';
    const hiddenStd = mup ? c.initStd * Math.sqrt(c.baseWidth / c.width) : c.initStd;
    const residStd = hiddenStd / Math.sqrt(2 * c.layers);
    const kv = c.kvHeads * headDim(c), H = mlpHidden(c);
    this.wte = param('model.embed_tokens.weight', normalInit([c.vocabSize, c.width], c.initStd, rng), [c.vocabSize, c.width]);
    this.wpe = c.positions === 'learned'
      ? param('model.embed_positions.weight', normalInit([c.contextLength, c.width], c.initStd, rng), [c.contextLength, c.width]) : null;
    for (let i = 0; i < c.layers; i++) {
      const p = `model.layers.${i}`;
      const lin = (name: string, inF: number, outF: number, std: number) => new Linear(`${p}.${name}`, inF, outF, { bias: c.bias, std, rng });
      this.blocks.push({
        ln1: new Norm(`${p}.input_layernorm`, c.width, c.norm, c.bias, c.normEps),
        q: lin('self_attn.q_proj', c.width, c.width, hiddenStd),
        k: lin('self_attn.k_proj', c.width, kv, hiddenStd),
        v: lin('self_attn.v_proj', c.width, kv, hiddenStd),
        o: lin('self_attn.o_proj', c.width, c.width, residStd),
        ln2: new Norm(`${p}.post_attention_layernorm`, c.width, c.norm, c.bias, c.normEps),
        up: lin('mlp.up_proj', c.width, H, hiddenStd),
        gate: c.activation === 'swiglu' ? lin('mlp.gate_proj', c.width, H, hiddenStd) : null,
        down: lin('mlp.down_proj', H, c.width, mup ? c.initStd * Math.sqrt(c.baseWidth / H) / Math.sqrt(2 * c.layers) : residStd),
      });
    }
    this.lnF = new Norm('model.norm', c.width, c.norm, c.bias, c.normEps);
    this.lmHead = c.tiedEmbeddings ? null
      : param('lm_head.weight', mup ? new Float32Array(c.vocabSize * c.width) : normalInit([c.vocabSize, c.width], c.initStd, rng), [c.vocabSize, c.width]);
  }

  /** Every parameter with its optimizer treatment (decay on matrices; muP learning-rate scales). */
  params(): Param[] {
    const c = this.config;
    const hiddenLr = c.parametrization === 'mup' ? c.baseWidth / c.width : 1;
    const out: Param[] = [{ name: this.wte.name!, tensor: this.wte, decay: false, lrScale: 1 }];
    if (this.wpe) out.push({ name: this.wpe.name!, tensor: this.wpe, decay: false, lrScale: 1 });
    for (const b of this.blocks) {
      out.push(...b.ln1.params(), ...b.q.params(true, hiddenLr), ...b.k.params(true, hiddenLr), ...b.v.params(true, hiddenLr),
        ...b.o.params(true, hiddenLr), ...b.ln2.params(), ...b.up.params(true, hiddenLr),
        ...(b.gate ? b.gate.params(true, hiddenLr) : []), ...b.down.params(true, hiddenLr));
    }
    out.push(...this.lnF.params());
    if (this.lmHead) out.push({ name: this.lmHead.name!, tensor: this.lmHead, decay: true, lrScale: hiddenLr });
    return out;
  }

  /** name → tensor, for checkpoints. */
  namedTensors(): Map<string, Tensor> {
    return new Map(this.params().map((p) => [p.name, p.tensor]));
  }

  paramCount(): number { return paramCount(this.config); }
  flopsPerToken(): number { return flopsPerToken(this.config); }

  /** Multiplier on the logits: 1, or baseWidth/width under muP. */
  get logitScale(): number {
    return this.config.parametrization === 'mup' ? this.config.baseWidth / this.config.width : 1;
  }

  /** Attention softmax scale: 1/sqrt(D), or muP's 1/D (scaled to agree at the base width). */
  get attnScale(): number {
    const c = this.config, D = headDim(c);
    if (c.parametrization !== 'mup') return 1 / Math.sqrt(D);
    const D0 = c.baseWidth / c.heads;
    return Math.sqrt(D0) / D;
  }

  /** Token (+ spliced) embeddings plus learned positions: (B, T, C). */
  embed(ids: Tensor, positions: Tensor, splice?: Splice): Tensor {
    const c = this.config;
    let x: Tensor;
    if (splice && splice.index.length > 0) {
      if (splice.values.shape[0] !== splice.index.length || splice.values.shape[1] !== c.width) {
        throw new OpError('gpt.embed', `splice values ${JSON.stringify(splice.values.shape)} must be (${splice.index.length}, ${c.width})`);
      }
      // Append the spliced rows to the table and point the spliced positions at them.
      const table = ops.concat([this.wte, splice.values], 0);
      const idsHost = Int32Array.from(ids.toArray());
      splice.index.forEach((pos, j) => {
        if (pos < 0 || pos >= idsHost.length) throw new OpError('gpt.embed', `splice position ${pos} outside the ${idsHost.length} inputs`);
        idsHost[pos] = c.vocabSize + j;
      });
      x = ops.embedding(table, Tensor.from(idsHost, ids.shape, ids.backend));
    } else {
      x = ops.embedding(this.wte, ids);
    }
    if (this.wpe) x = ops.add(x, ops.embedding(this.wpe, positions));
    return x;
  }

  /** One Transformer block on x (B, T, C). */
  block(b: Block, x: Tensor, positions: Tensor, mask: Tensor | null, dropSeed: number, layer: number): Tensor {
    const c = this.config, [B, T] = x.shape as [number, number, number];
    const D = headDim(c);
    const drop = (t: Tensor, k: number) => (this.training && c.dropout > 0 ? ops.dropout(t, c.dropout, (dropSeed + layer * 7919 + k * 104729) >>> 0) : t);
    const h = b.ln1.forward(x);
    let q = ops.reshape(b.q.forward(h), [B, T, c.heads, D]);
    let k = ops.reshape(b.k.forward(h), [B, T, c.kvHeads, D]);
    const v = ops.reshape(b.v.forward(h), [B, T, c.kvHeads, D]);
    if (c.positions === 'rope') { q = ops.rope(q, positions, c.ropeBase); k = ops.rope(k, positions, c.ropeBase); }
    const a = ops.attention(q, k, v, { causal: true, scale: this.attnScale, mask });
    x = ops.add(x, drop(b.o.forward(ops.reshape(a, [B, T, c.width])), 0));
    return ops.add(x, drop(this.mlp(b, b.ln2.forward(x)), 1));
  }

  /** A block's MLP on normalised input: GELU, or SwiGLU with a gate. */
  private mlp(b: Block, h: Tensor): Tensor {
    const m = b.gate ? ops.mul(ops.silu(b.gate.forward(h)), b.up.forward(h)) : ops.gelu(b.up.forward(h));
    return b.down.forward(m);
  }

  /** Checks ids (B, T) and positions; the embedded input (B, T, C) with its positions. */
  private prepare(ids: Tensor, opts: ForwardOptions): { positions: Tensor; x: Tensor } {
    const c = this.config;
    if (ids.dtype !== 'int32' || ids.ndim !== 2) throw new OpError('gpt.forward', `ids must be int32 (B, T), got ${ids.dtype} [${ids.shape.join(', ')}]`);
    const [B, T] = ids.shape as [number, number];
    // Explicit positions (packed rows of several sequences) may make a row longer than the
    // context; what must stay inside it is every position.
    if (opts.positions) {
      if (!(opts.positions.dtype === 'int32' && opts.positions.shape.length === 2 && opts.positions.shape[0] === B && opts.positions.shape[1] === T)) {
        throw new OpError('gpt.forward', `positions must be int32 [${B}, ${T}], got ${opts.positions.dtype} [${opts.positions.shape.join(', ')}]`);
      }
      if (T > c.contextLength) {
        const p = opts.positions.toArray();
        let max = 0;
        for (let i = 0; i < p.length; i++) if (p[i]! > max) max = p[i]!;
        if (max >= c.contextLength) throw new OpError('gpt.forward', `position ${max} exceeds the context length ${c.contextLength}`);
      }
    } else if (T > c.contextLength) throw new OpError('gpt.forward', `sequence length ${T} exceeds the context length ${c.contextLength}`);
    const positions = opts.positions ?? defaultPositions(B, T, ids);
    let x = this.embed(ids, positions, opts.splice);
    if (this.training && c.dropout > 0) x = ops.dropout(x, c.dropout, ((opts.dropoutSeed ?? 0) * 31 + 17) >>> 0);
    return { positions, x };
  }

  /** Final hidden states (B, T, C) after the last norm. */
  hidden(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const { positions, x: x0 } = this.prepare(ids, opts);
    let x = x0;
    for (let i = 0; i < this.blocks.length; i++) x = this.block(this.blocks[i]!, x, positions, opts.mask ?? null, opts.dropoutSeed ?? 0, i);
    return this.lnF.forward(x);
  }

  /**
   * Final hidden states (n, C) at the flat rows b·T + t of `rows` (strictly increasing), the
   * same as gathering them from `hidden` but cheaper when few rows are wanted (the targets of a
   * prompt's answer): the last block runs its queries, output projection and MLP only at those
   * rows; every row still gives its keys and values. Falls back to the full forward and a gather
   * with dropout or an explicit mask.
   */
  hiddenAt(ids: Tensor, rows: Int32Array, opts: ForwardOptions = {}): Tensor {
    const c = this.config;
    if (ids.dtype !== 'int32' || ids.ndim !== 2) throw new OpError('gpt.hiddenAt', `ids must be int32 (B, T), got ${ids.dtype} [${ids.shape.join(', ')}]`);
    const [B, T] = ids.shape as [number, number];
    for (let i = 0; i < rows.length; i++) {
      if (!(rows[i]! >= 0 && rows[i]! < B * T) || (i > 0 && rows[i]! <= rows[i - 1]!)) {
        throw new OpError('gpt.hiddenAt', `rows must be strictly increasing flat indices in [0, ${B * T}); entry ${i} is ${rows[i]}`);
      }
    }
    if (rows.length === 0) throw new OpError('gpt.hiddenAt', 'no rows asked for');
    if ((this.training && c.dropout > 0) || opts.mask || this.blocks.length === 0) {
      return ops.embedding(ops.reshape(this.hidden(ids, opts), [B * T, c.width]), Tensor.from(rows, [rows.length], ids.backend));
    }
    const { positions, x } = this.prepare(ids, opts);
    let h = x;
    const last = this.blocks.length - 1;
    for (let i = 0; i < last; i++) h = this.block(this.blocks[i]!, h, positions, null, opts.dropoutSeed ?? 0, i);
    return this.lnF.forward(this.lastBlockAt(this.blocks[last]!, h, positions, rows));
  }

  /**
   * The last block at the rows `rows` of x (B, T, C) → (n, C). The rows are laid out as queries
   * (B, Q, ...) with Q the most rows of one sequence (spare slots repeat the sequence's first
   * position and are dropped); an additive mask keeps each query causal at its own position.
   */
  private lastBlockAt(b: Block, x: Tensor, positions: Tensor, rows: Int32Array): Tensor {
    const c = this.config, [B, T, C] = x.shape as [number, number, number];
    const D = headDim(c);
    const counts = new Int32Array(B);
    for (const r of rows) counts[Math.floor(r / T)]!++;
    let Q = 1;
    for (const n of counts) Q = Math.max(Q, n);
    const slots = new Int32Array(B * Q), keep = new Int32Array(rows.length), mask = new Float32Array(B * Q * T).fill(-Infinity);
    const fill = new Int32Array(B);
    for (let b = 0; b < B; b++) for (let j = 0; j < Q; j++) slots[b * Q + j] = b * T;
    rows.forEach((r, i) => { const bb = Math.floor(r / T), j = fill[bb]!++; slots[bb * Q + j] = r; keep[i] = bb * Q + j; });
    for (let s = 0; s < B * Q; s++) {
      const t = slots[s]! % T;
      mask.fill(0, s * T, s * T + t + 1);
    }
    const be = x.backend;
    const at = Tensor.from(slots, [B * Q], be);
    const flat = ops.reshape(x, [B * T, C]);
    const h = b.ln1.forward(x);
    let k = ops.reshape(b.k.forward(h), [B, T, c.kvHeads, D]);
    const v = ops.reshape(b.v.forward(h), [B, T, c.kvHeads, D]);
    let q = ops.reshape(b.q.forward(ops.embedding(ops.reshape(h, [B * T, C]), at)), [B, Q, c.heads, D]);
    if (c.positions === 'rope') {
      const p = positions.toArray();
      const qPos = Tensor.from(Int32Array.from(slots, (s) => p[s]!), [B, Q], be);
      q = ops.rope(q, qPos, c.ropeBase);
      k = ops.rope(k, positions, c.ropeBase);
    }
    const a = ops.attention(q, k, v, { scale: this.attnScale, mask: Tensor.from(mask, [B, 1, Q, T], be) });
    let y = ops.add(ops.embedding(flat, at), b.o.forward(ops.reshape(a, [B * Q, C])));
    if (rows.length < B * Q) y = ops.embedding(y, Tensor.from(keep, [keep.length], be));
    return ops.add(y, this.mlp(b, b.ln2.forward(y)));
  }

  /** Logits (..., V) from hidden states (..., C). */
  logits(h: Tensor): Tensor {
    const y = ops.matmul(h, this.lmHead ?? this.wte, { transB: true });
    return this.logitScale === 1 ? y : ops.scalar('mul', y, this.logitScale);
  }

  /** Logits (B, T, V). */
  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    return this.logits(this.hidden(ids, opts));
  }

  /** Mean next-token cross-entropy of ids (B, T) against targets (B, T) (ignoreIndex -100 skips). */
  loss(ids: Tensor, targets: Tensor, opts: ForwardOptions = {}): Tensor {
    const logits = this.forward(ids, opts);
    const V = this.config.vocabSize;
    return ops.crossEntropy(ops.reshape(logits, [-1, V]), ops.reshape(targets, [-1]), { ignoreIndex: -100 });
  }
}

function defaultPositions(B: number, T: number, like: Tensor): Tensor {
  const p = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) p[b * T + t] = t;
  return Tensor.from(p, [B, T], like.backend ?? currentBackend());
}
