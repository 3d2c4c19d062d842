// BufferPool (src/tensor/backends/cpu-buf.ts): storage of collected buffers is reused, zero-filled
// where asked, bounded, and never handed out while its first owner is alive; ops that take
// unzeroed outputs (`empty`) still compute right on recycled storage full of garbage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BufferPool, sizeClass, type CpuBuf } from '../../src/tensor/backends/cpu-buf.ts';
import { loadNativeBackend, nativeLoadError, type NativeBackend } from '../../src/tensor/backends/native.ts';
import { ReferenceBackend } from '../../src/tensor/backends/reference.ts';
import { Tensor, inStep } from '../../src/tensor/tensor.ts';
import * as ops from '../../src/tensor/ops.ts';
import { yieldToEventLoop } from '../../src/util/event-loop.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects what is unreachable and lets the registry's callbacks run. */
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) { gc(); await yieldToEventLoop(); }
}

test('storage of a collected buffer is reused for the same dtype and length, zero-filled by alloc', async () => {
  const pool = new BufferPool();
  let b: CpuBuf | null = pool.alloc('float32', 1000);
  (b.data as Float32Array).fill(7);
  const kept = pool.alloc('float32', 1000); // alive: never handed out again
  (kept.data as Float32Array).fill(3);
  b = null;
  await collect();
  assert.equal(pool.pooledBytes, 4000);
  const again = pool.alloc('float32', 1000);
  assert.equal(pool.reused, 1);
  assert.notEqual(again.data, kept.data);
  assert.ok((again.data as Float32Array).every((v) => v === 0), 'alloc zero-fills recycled storage');
  assert.ok((kept.data as Float32Array).every((v) => v === 3));
  // Other lengths and dtypes are not served from it; short arrays are never pooled.
  assert.equal(pool.alloc('float32', 999).data.length, 999);
  assert.ok(pool.alloc('int32', 1000).data instanceof Int32Array);
  assert.equal(pool.reused, 1);
  const created = pool.created;
  pool.alloc('float32', 10);
  assert.equal(pool.created, created);
  assert.ok(again && kept);
});

test('alloc without zeroing hands back the old contents; the pool keeps at most capBytes', async () => {
  const pool = new BufferPool(8000, 1 << 30);
  let a: CpuBuf | null = pool.alloc('float32', 1000);
  (a.data as Float32Array).fill(5);
  a = null;
  await collect();
  const dirty = pool.alloc('float32', 1000, false);
  assert.equal((dirty.data as Float32Array)[999], 5);
  // Three 4000-byte arrays come back into an 8000-byte pool: two stay.
  let three: CpuBuf[] | null = [pool.alloc('float32', 1000), pool.alloc('float32', 1000), pool.alloc('float32', 1000)];
  assert.equal(three.length, 3);
  three = null;
  await collect();
  assert.equal(pool.pooledBytes, 8000);
  // A new size pushes out the least recently used one.
  let other: CpuBuf | null = pool.alloc('float64', 500);
  assert.equal(other.data.byteLength, 4000);
  other = null;
  await collect();
  assert.ok(pool.pooledBytes <= 8000);
  pool.alloc('float64', 500);
  assert.ok(pool.reused >= 2, 'the newest size is kept');
  assert.ok(dirty);
});

test('without a registry callback in between, registration stops after pendingBytes (a synchronous loop keeps no more)', () => {
  const pool = new BufferPool(1 << 30, 40_000);
  const held = [];
  for (let i = 0; i < 25; i++) held.push(pool.alloc('float32', 1000)); // 4000 bytes each, no yield
  assert.equal(pool.created, 25);
  assert.equal(pool.unpooled, 15, 'the first 10 are registered, the rest left to the GC');
  assert.equal(held.length, 25);
});

const nat = loadNativeBackend() as NativeBackend | null;
const skip = nat ? false : `native addon unavailable: ${nativeLoadError()}`;

test('ops writing into recycled (unzeroed) storage match the reference backend', { skip }, async () => {
  const be = nat!, ref = new ReferenceBackend();
  const [m, k, n] = [7, 33, 19];
  const vals = (len: number, s: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(i * s + 1));
  // Fill the pool with NaN-filled arrays of every output length the ops below ask for.
  let junk: CpuBuf[] | null = [];
  for (const len of [m * n, m * k, k * n, 3 * k * n, m * k]) for (let r = 0; r < 4; r++) {
    const b = be.empty('float32', len) as CpuBuf;
    (b.data as Float32Array).fill(Number.NaN);
    junk.push(b);
  }
  junk = null;
  await collect();
  assert.ok(be.pool.pooledBytes > 0);
  const run = (backend: typeof ref | NativeBackend) => {
    const A = Tensor.from(vals(m * k, 0.3), [m, k], backend), B = Tensor.from(vals(k * n, 0.7), [k, n], backend);
    const Ab = Tensor.from(vals(3 * m * k, 0.11), [3, m, k], backend), Bb = Tensor.from(vals(3 * k * n, 0.13), [3, k, n], backend);
    A.requiresGrad = true; B.requiresGrad = true; Bb.requiresGrad = true;
    const y = ops.matmul(A, B), yb = ops.matmul(Ab, Bb);
    const z = ops.unary('tanh', ops.scalar('mul', ops.binary('mul', y, y), 0.5));
    const loss = ops.sum(ops.add(ops.sum(z), ops.sum(ops.unary('exp', ops.scalar('mul', yb, 0.01)))));
    loss.backward();
    return [y, yb, z, A.grad!, B.grad!, Bb.grad!].map((t) => t.toArray());
  };
  const got = run(be), want = run(ref);
  for (let i = 0; i < got.length; i++) {
    assert.equal(got[i]!.length, want[i]!.length);
    for (let j = 0; j < got[i]!.length; j++) {
      assert.ok(Number.isFinite(got[i]![j]!), `output ${i}[${j}] is ${got[i]![j]} (recycled storage not overwritten)`);
      assert.ok(Math.abs(got[i]![j]! - want[i]![j]!) <= 1e-4 * (1 + Math.abs(want[i]![j]!)), `output ${i}[${j}]: ${got[i]![j]} vs ${want[i]![j]}`);
    }
  }
  assert.ok(be.pool.reused > 0, 'the ops took recycled storage');
});

test('a step scope gives its storage back at once; released buffers throw; keep, abort and nesting', () => {
  const pool = new BufferPool();
  pool.beginStep();
  const a = pool.alloc('float32', 1000), b = pool.alloc('float32', 500), kept = pool.alloc('int32', 300);
  (a.data as Float32Array).fill(5);
  pool.endStep([kept]);
  assert.equal(pool.released, 2);
  assert.throws(() => a.data, /used after the training step/);
  assert.throws(() => b.length, /used after the training step/);
  assert.equal(kept.length, 300, 'a kept buffer stays usable');
  assert.equal(pool.pooledBytes, 4 * 1500);
  const again = pool.alloc('float32', 1000);
  assert.equal(pool.reused, 1);
  assert.deepEqual([...(again.data as Float32Array).slice(0, 3)], [0, 0, 0], 'alloc zero-fills reused storage');
  assert.throws(() => pool.endStep(), /no step scope/);
  pool.beginStep();
  assert.throws(() => pool.beginStep(), /already open/);
  const c = pool.alloc('float32', 700);
  pool.abortStep();
  assert.equal(c.length, 700, 'an aborted scope releases nothing');
  assert.equal(pool.released, 2);
  // a step records storage up to stepBytes (the rest are plain arrays) and keeps all of it, even
  // past capBytes, for the next step; a pool that is off records none
  const small = new BufferPool(4000, 4000, 64, 12000), off = new BufferPool(0);
  for (const p of [small, off]) {
    for (let i = 0; i < 2; i++) {
      p.beginStep();
      for (let j = 0; j < 5; j++) p.alloc('float32', 1000 + j);
      p.endStep();
    }
  }
  assert.equal(small.released, 4, 'each step recorded two buffers (8,000 of 12,000 bytes; a third would pass stepBytes)');
  assert.equal(small.reused, 2, 'the second step reused the two released by the first');
  assert.equal(small.unpooled, 6);
  assert.ok(small.pooledBytes > 4000, 'the step keeps its storage past capBytes');
  assert.equal(off.released, 0);
  assert.equal(off.reused, 0);
});

test('training steps in step scopes reuse poisoned storage and match the reference backend; escapes throw', { skip }, () => {
  const be = nat!, ref = new ReferenceBackend();
  const [B, T, H, D, V] = [2, 5, 2, 4, 11];
  const W = H * D;
  const vals = (len: number, s: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(i * s + 1));
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7) % V);
  const make = (backend: typeof ref | NativeBackend) => {
    const p = (len: number, s: number, shape: number[]) => { const t = Tensor.from(vals(len, s), shape, backend); t.requiresGrad = true; return t; };
    return { table: p(V * W, 0.3, [V, W]), lnw: p(W, 0.5, [W]), lnb: p(W, 0.9, [W]), wqkv: p(W * 3 * W, 0.07, [W, 3 * W]), wo: p(2 * W * V, 0.05, [2 * W, V]), rmsw: p(2 * W, 0.4, [2 * W]) };
  };
  // embedding, layerNorm, matmul, attention (causal), permute, rope, dropout, softmax, sum, slice,
  // concat, rmsNorm, cross-entropy and their backward
  const step = (backend: typeof ref | NativeBackend, w: ReturnType<typeof make>) => {
    const x = ops.layerNorm(ops.embedding(w.table, Tensor.from(ids, [B, T], backend)), w.lnw, w.lnb);
    const [q, k, v] = ops.split(ops.matmul(x, w.wqkv), [W, W, W], 2).map((t) => ops.reshape(t, [B, T, H, D]));
    const att = ops.reshape(ops.attention(q!, k!, v!, { causal: true }), [B, T, W]);
    const swapped = ops.permute(ops.permute(x, [1, 0, 2]), [1, 0, 2]);
    const pos = Tensor.from(Int32Array.from({ length: B * T }, (_, i) => i % T), [B, T], backend);
    const turned = ops.reshape(ops.rope(ops.reshape(swapped, [B, T, H, D]), pos), [B, T, W]);
    const mixed = ops.add(ops.dropout(turned, 0.25, 7), ops.binary('mul', ops.softmax(turned), ops.sum(ops.slice(turned, 2, 1, 3), 2, true)));
    const h = ops.rmsNorm(ops.concat([att, mixed], 2), w.rmsw);
    const logits = ops.reshape(ops.matmul(h, w.wo), [B * T, V]);
    const loss = ops.crossEntropy(logits, Tensor.from(Int32Array.from({ length: B * T }, (_, i) => (i * 3) % V), [B * T], backend));
    loss.backward();
    return { loss, h };
  };
  const wr = make(ref);
  step(ref, wr);
  const want = Object.values(wr).map((t) => t.grad!.toArray());
  be.pool.poison = true;
  try {
    const wn = make(be);
    let escaped: Tensor | null = null;
    for (let i = 0; i < 3; i++) {
      for (const t of Object.values(wn)) t.grad = null;
      const reusedBefore = be.pool.reused;
      const grads = inStep(be, () => {
        const { h } = step(be, wn);
        escaped = h;
        return Object.values(wn).map((t) => t.grad!.toArray());
      }, () => Object.values(wn).map((t) => t.grad!));
      if (i > 0) assert.ok(be.pool.reused - reusedBefore >= 10, `step ${i} reused the released storage`);
      for (let g = 0; g < grads.length; g++) {
        for (let j = 0; j < grads[g]!.length; j++) {
          assert.ok(Number.isFinite(grads[g]![j]!), `step ${i} grad ${g}[${j}] is ${grads[g]![j]} (poisoned storage read)`);
          assert.ok(Math.abs(grads[g]![j]! - want[g]![j]!) <= 1e-4 * (1 + Math.abs(want[g]![j]!)), `step ${i} grad ${g}[${j}]: ${grads[g]![j]} vs ${want[g]![j]}`);
        }
      }
      assert.equal(wn.table.grad!.size, V * W, 'kept gradients stay usable');
    }
    assert.throws(() => escaped!.toArray(), /used after the training step/);
    // a step that throws releases nothing; a nested scope just runs
    let inner: Tensor | null = null;
    assert.throws(() => inStep(be, () => { inner = ops.scalar('mul', wn.lnw, 2); throw new Error('boom'); }), /boom/);
    assert.equal(inner!.toArray().length, W);
    const nested = inStep(be, () => { const t = inStep(be, () => ops.scalar('mul', wn.lnw, 3)); return t.toArray()[0]; });
    assert.ok(Math.abs(nested! - 3 * wn.lnw.toArray()[0]!) < 1e-6);
  } finally {
    be.pool.poison = false;
  }
});

test('size classes: lengths from 4,096 elements share storage within 1/8 of their power of two', () => {
  assert.equal(sizeClass(4095), 4095);
  assert.equal(sizeClass(4096), 4096);
  assert.equal(sizeClass(4097), 4608);
  assert.equal(sizeClass(5000), 5120);
  for (let n = 4096; n < 1 << 22; n = Math.ceil(n * 1.37)) {
    const c = sizeClass(n);
    assert.ok(c >= n && c <= n * 1.125, `class of ${n} is ${c}`);
  }
  const pool = new BufferPool(1 << 20);
  inPoolStep(pool, () => { (pool.alloc('float32', 5000).data as Float32Array).fill(2); });
  // the next step asks for another length of the same class: it gets the storage, as a view of its own length
  inPoolStep(pool, () => {
    const b = pool.alloc('float32', 5100);
    assert.equal(pool.reused, 1);
    assert.equal(b.data.length, 5100);
    assert.equal(b.data.buffer.byteLength, 5120 * 4);
    assert.ok((b.data as Float32Array).every((v) => v === 0), 'zero-filled over its own length');
  });
  // and gives back the whole array: a request of the full class length reuses it too
  inPoolStep(pool, () => assert.equal(pool.alloc('float32', 5120, false).data.length, 5120));
  assert.equal(pool.reused, 2);
});

test('over the cap the pool lets go of the least recently used storage one array at a time', () => {
  const pool = new BufferPool(1 << 20); // 1 MiB
  inPoolStep(pool, () => { for (let i = 0; i < 8; i++) pool.alloc('float32', 65536); }); // a 2 MiB step
  assert.equal(pool.pooledBytes, 8 * 65536 * 4, 'after a step the pool keeps at least its bytes');
  // A small step's storage comes back into a pool over its 1 MiB cap: five large arrays make room, three stay.
  inPoolStep(pool, () => { pool.alloc('float32', 8192); });
  assert.equal(pool.pooledBytes, 3 * 65536 * 4 + 8192 * 4);
  const created = pool.created;
  inPoolStep(pool, () => { for (let i = 0; i < 8; i++) pool.alloc('float32', 65536); });
  assert.equal(pool.created, created + 5, 'the large step finds 3 of its 8 arrays again');
});

function inPoolStep<T>(pool: BufferPool, fn: () => T): T {
  pool.beginStep();
  const r = fn();
  pool.endStep();
  return r;
}

test('reserve raises the cap (never lowers it): storage of one phase survives the next phase\'s steps', () => {
  const n = 1 << 16, bytes = 4 * n; // 256 KB per buffer
  const phase = (pool: BufferPool, len: number) => { pool.beginStep(); for (let i = 0; i < 4; i++) pool.alloc('float32', len); pool.endStep(); };
  const run = (pool: BufferPool) => {
    phase(pool, n);            // phase A: 4 buffers of one size
    phase(pool, 3 * n);        // phase B: other sizes, 3 MB; the pool keeps at least this step
    const before = pool.created;
    phase(pool, n);            // phase A again
    return pool.created - before;
  };
  assert.equal(run(new BufferPool(4 * bytes)), 4, 'with a cap of one phase, B evicted A: A allocates afresh');
  const big = new BufferPool(4 * bytes);
  big.reserve(20 * bytes);
  assert.equal(big.capBytes, 20 * bytes);
  assert.equal(run(big), 0, 'with room for both phases, A reuses its storage');
  big.reserve(bytes);
  assert.equal(big.capBytes, 20 * bytes, 'reserve never lowers the cap');
  const off = new BufferPool(0);
  off.reserve(20 * bytes);
  assert.equal(off.capBytes, 0, 'a pool that is off stays off');
});
