/**
 * Public entry of the tensor engine: Tensor, autograd scope, ops, backend choice.
 *
 *   model code ──calls──▶ ops (src/tensor/ops.ts: shape rule, forward, backward)
 *                           │ allocates outputs, records a Node on the tape
 *                           ▼
 *                      Backend (src/tensor/backend.ts) ──▶ reference (TypeScript) | native (C, SIMD, threads)
 */
import './backends/native.ts'; // registers the native backend with device.ts (loaded lazily)
export { Tensor, noGrad, inStep, isGradEnabled, numel } from './tensor.ts';
export * as ops from './ops.ts';
export { currentBackend, setBackend, withBackend, referenceBackend } from './device.ts';
export type { Backend, Buf, DType } from './backend.ts';
export { Rng, uniformAt } from './rng.ts';
