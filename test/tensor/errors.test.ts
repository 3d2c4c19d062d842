/** Bad input raises OpError naming the op and the shapes — never a crash or a silent wrong result. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, referenceBackend } from '../../src/tensor/index.ts';
import * as ops from '../../src/tensor/ops.ts';
import { OpError } from '../../src/util/errors.ts';

const be = referenceBackend();
const f = (shape: number[], v = 1) => Tensor.full(shape, v, 'float32', be);
const i32 = (vals: number[]) => Tensor.from(Int32Array.from(vals), [vals.length], be);

function throwsOp(fn: () => unknown, op: string, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OpError, `expected OpError, got ${e}`);
    assert.ok(e.message.startsWith(op + ':'), e.message);
    for (const fr of fragments) assert.ok(e.message.includes(fr), `'${e.message}' lacks '${fr}'`);
    return true;
  });
}

test('mismatched shapes name the op and the shapes', () => {
  throwsOp(() => ops.matmul(f([2, 3]), f([4, 5])), 'matmul', '[2, 3]', '[4, 5]');
  throwsOp(() => ops.add(f([2, 3]), f([4])), 'add', '[2, 3]', '[4]');
  throwsOp(() => ops.concat([f([2, 3]), f([3, 3])], 1), 'concat', '[2, 3]', '[3, 3]');
  throwsOp(() => ops.reshape(f([2, 3]), [4, 2]), 'reshape', '[2, 3]', '[4, 2]');
  throwsOp(() => ops.layerNorm(f([2, 3]), f([4]), null), 'layerNorm', '[3]', '[4]');
  throwsOp(() => ops.attention(f([1, 2, 3, 4]), f([1, 2, 2, 4]), f([1, 2, 2, 4])), 'attention', '3', '2');
  throwsOp(() => ops.narrow(f([2, 3]), 1, 2, 2), 'narrow', 'out of bounds');
  throwsOp(() => ops.permute(f([2, 3]), [0, 0]), 'permute', 'not a permutation');
});

test('wrong dtype is refused', () => {
  throwsOp(() => ops.exp(i32([1, 2])), 'exp', 'int32');
  throwsOp(() => ops.embedding(f([4, 2]), f([2])), 'embedding', 'int32');
  throwsOp(() => ops.crossEntropy(f([2, 3]), f([2])), 'crossEntropy', 'int32');
});

test('out-of-range indices are refused before any kernel runs', () => {
  throwsOp(() => ops.embedding(f([4, 2]), i32([0, 4])), 'embedding', 'index 4', '[0, 4)');
  throwsOp(() => ops.embedding(f([4, 2]), i32([-1])), 'embedding', 'index -1');
  throwsOp(() => ops.crossEntropy(f([2, 3]), i32([0, 3])), 'crossEntropy', 'index 3');
  // the ignore index is allowed
  assert.ok(Number.isFinite(ops.crossEntropy(f([2, 3]), i32([0, -100])).item()));
});

test('NaN logits make the loss fail loudly', () => {
  const l = Tensor.from(Float32Array.from([0, NaN, 1, 2]), [2, 2], be);
  throwsOp(() => ops.crossEntropy(l, i32([0, 1])), 'crossEntropy', 'not finite', '[2, 2]');
});

test('backward of a non-scalar needs an explicit gradient', () => {
  const x = f([3]); x.requiresGrad = true;
  throwsOp(() => ops.exp(x).backward(), 'backward', '[3]');
});
