/**
 * Tensor and reverse-mode autograd.
 *
 * A Tensor is a shape, a dtype and a buffer owned by a backend. Tensors made by ops remember
 * how they were made (`node`): the op name, its inputs and a backward closure. `backward()`
 * walks those nodes in reverse topological order (like micrograd), accumulating gradients
 * and releasing each node's saved state once it has been used.
 *
 * Only the ops (src/tensor/ops.ts) read `buf`; model code calls ops and reads values back
 * with the explicit `toArray()` / `item()`.
 */
import type { Backend, Buf, DType } from './backend.ts';
import { currentBackend } from './device.ts';
import { OpError } from '../util/errors.ts';

/** How a tensor was produced: the op, its inputs, and how to push a gradient back to them. */
export interface Node {
  op: string;
  inputs: Tensor[];
  /** Given d(loss)/d(output), returns d(loss)/d(input) for each input (null where not needed). */
  backward: (grad: Tensor) => (Tensor | null)[];
}

let gradEnabled = true;

/** Runs fn with gradient tracking off (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try { return fn(); } finally { gradEnabled = prev; }
}

export function isGradEnabled(): boolean { return gradEnabled; }

/**
 * Runs one training step (forward, backward, optimizer update, gradients cleared) in a step scope
 * of `backend`: every buffer allocated inside is reused as soon as fn returns, except those of the
 * tensors `keep` names (read after fn). Tensors made inside must not outlive the step unless kept:
 * any later use of one throws. Return plain values (numbers) from fn. If fn throws, nothing is
 * released. Nested calls, and backends without scopes, just run fn.
 */
export function inStep<T>(backend: Backend, fn: () => T, keep?: () => Iterable<Tensor>): T {
  if (!backend.beginStep?.()) return fn();
  let r: T;
  try { r = fn(); } catch (e) { backend.abortStep!(); throw e; }
  const kept: Buf[] = [];
  if (keep) for (const t of keep()) kept.push(t.buf);
  backend.endStep!(kept);
  return r;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class Tensor {
  requiresGrad = false;
  grad: Tensor | null = null;
  node: Node | null = null;
  /** Optional name (parameters), used in error messages and checkpoints. */
  name?: string;

  constructor(
    readonly buf: Buf,
    readonly shape: readonly number[],
    readonly backend: Backend,
  ) {
    if (numel(shape) !== buf.length) {
      throw new OpError('tensor', `shape [${shape.join(', ')}] holds ${numel(shape)} elements but the buffer has ${buf.length}`);
    }
  }

  get dtype(): DType { return this.buf.dtype; }
  get size(): number { return this.buf.length; }
  get ndim(): number { return this.shape.length; }

  /** Creates a tensor from host data on the current (or given) backend. */
  static from(data: Float32Array | Int32Array | Float64Array | number[], shape?: readonly number[], backend: Backend = currentBackend()): Tensor {
    const arr = Array.isArray(data) ? Float32Array.from(data) : data;
    return new Tensor(backend.fromHost(arr), shape ?? [arr.length], backend);
  }

  static zeros(shape: readonly number[], dtype: DType = 'float32', backend: Backend = currentBackend()): Tensor {
    return new Tensor(backend.alloc(dtype, numel(shape)), shape, backend);
  }

  static full(shape: readonly number[], value: number, dtype: DType = 'float32', backend: Backend = currentBackend()): Tensor {
    const t = Tensor.zeros(shape, dtype, backend);
    if (value !== 0) backend.fill(t.buf, value);
    return t;
  }

  /** A trainable leaf tensor. */
  static param(data: Float32Array | Float64Array, shape: readonly number[], name?: string, backend: Backend = currentBackend()): Tensor {
    const t = Tensor.from(data, shape, backend);
    t.requiresGrad = true;
    if (name !== undefined) t.name = name;
    return t;
  }

  /** Explicit read back to the host (a copy; safe to keep and modify). */
  toArray(): Float32Array | Int32Array | Float64Array {
    return this.backend.toHost(this.buf).slice();
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new OpError('item', `expected a tensor with one element, got shape [${this.shape.join(', ')}]`);
    return this.backend.toHost(this.buf)[0]!;
  }

  /** Same storage, another shape with the same number of elements (no graph; ops.reshape records one). */
  reshapeTo(shape: readonly number[]): Tensor {
    return new Tensor(this.buf, shape, this.backend);
  }

  /** A tensor sharing storage but cut off from the graph. */
  detach(): Tensor {
    return new Tensor(this.buf, this.shape, this.backend);
  }

  toString(): string {
    return `Tensor(${this.name ? this.name + ', ' : ''}[${this.shape.join(', ')}], ${this.dtype}, ${this.backend.name})`;
  }

  /**
   * Back-propagates from this tensor. A scalar starts from gradient 1; otherwise pass `grad`.
   * Gradients of leaf tensors with requiresGrad accumulate into `.grad` (call zeroGrad between steps).
   * The graph is released as it is walked.
   */
  backward(grad?: Tensor): void {
    if (!grad) {
      if (this.size !== 1) throw new OpError('backward', `a non-scalar tensor of shape [${this.shape.join(', ')}] needs an explicit gradient`);
      grad = Tensor.full(this.shape, 1, this.dtype, this.backend);
    }
    const order = topoOrder(this);
    const grads = new Map<Tensor, Tensor>([[this, grad]]);
    // Buffers held in `grads`: a backward that hands the same buffer to two inputs (or passes
    // its incoming gradient through) must not let one in-place accumulation change the other.
    const held = new Set<Buf>([grad.buf]);
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i]!;
      const g = grads.get(t);
      grads.delete(t);
      if (!g) continue;
      held.delete(g.buf);
      const node = t.node;
      if (!node) {
        // Gradients in the map own their buffers (never aliasing activations or each other),
        // so a leaf can adopt g as its .grad without a copy.
        if (t.requiresGrad) {
          if (t.grad) t.backend.axpy(1, g.buf, t.grad.buf, t.size);
          else t.grad = g.buf === grad!.buf ? copyOf(g).reshapeTo(t.shape) : g.reshapeTo(t.shape);
        }
        continue;
      }
      const inGrads = node.backward(g);
      // g is no longer needed once backward returned: its buffer may be handed on once
      // (pass-through ops such as add and reshape) instead of being copied.
      let gAdopted = false;
      for (let j = 0; j < node.inputs.length; j++) {
        const inp = node.inputs[j]!, ig = inGrads[j];
        if (!ig || !needsGrad(inp)) continue;
        const prev = grads.get(inp);
        if (prev) prev.backend.axpy(1, ig.buf, prev.buf, prev.size);
        else {
          let own = ig;
          if (held.has(ig.buf) || (ig.buf === g.buf && gAdopted)) own = copyOf(ig);
          else if (ig.buf === g.buf) gAdopted = true;
          grads.set(inp, own);
          held.add(own.buf);
        }
      }
      t.node = null; // release saved state
    }
  }
}

function needsGrad(t: Tensor): boolean {
  return t.requiresGrad || t.node !== null;
}

function copyOf(t: Tensor): Tensor {
  const out = new Tensor(t.backend.empty(t.dtype, t.size), t.shape, t.backend);
  t.backend.cast(t.buf, out.buf, t.size);
  return out;
}


/** Tensors reachable from root through nodes, inputs before outputs. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS (deep graphs would overflow a recursive walk).
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i]!;
      if (!seen.has(c) && needsGrad(c)) { seen.add(c); stack.push([c, 0]); }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

/** Records a node on `out` when grad mode is on and any input needs a gradient. */
export function record(out: Tensor, op: string, inputs: Tensor[], backward: Node['backward']): Tensor {
  if (gradEnabled && inputs.some(needsGrad)) out.node = { op, inputs, backward };
  return out;
}
