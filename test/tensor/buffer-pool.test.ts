// BufferPool (src/tensor/backends/cpu-buf.ts): storage of collected buffers is reused, zero-filled
// where asked, bounded, and never handed out while its first owner is alive; ops that take
// unzeroed outputs (`empty`) still compute right on recycled storage full of garbage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BufferPool, type CpuBuf } from '../../src/tensor/backends/cpu-buf.ts';
import { loadNativeBackend, nativeLoadError, type NativeBackend } from '../../src/tensor/backends/native.ts';
import { ReferenceBackend } from '../../src/tensor/backends/reference.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
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
  assert.equal(pool.created, 10);
  assert.equal(pool.unpooled, 15);
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
