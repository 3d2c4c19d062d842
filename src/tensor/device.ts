/**
 * The backend choice — the only global state of the engine.
 *
 * Default: the native backend when its addon loads, else the reference backend (said once, in
 * one line). `LUMEN_BACKEND=reference|native` forces a choice; `setBackend` changes it in code.
 */
import type { Backend } from './backend.ts';
import { ReferenceBackend } from './backends/reference.ts';
import { profiled } from './profile.ts';

let current: Backend | null = null;
let reference: ReferenceBackend | null = null;
let nativeLoader: (() => Backend | null) | null = null;

export function referenceBackend(): ReferenceBackend {
  return (reference ??= new ReferenceBackend());
}

/** Registered by src/tensor/backends/native.ts so this file does not import the addon eagerly. */
export function registerNativeLoader(loader: () => Backend | null): void {
  nativeLoader = loader;
}

export function currentBackend(): Backend {
  if (current) return current;
  current = chooseBackend();
  if (process.env.LUMEN_PROFILE === '1' || process.env.LUMEN_PROFILE === 'shapes') current = profiled(current);
  return current;
}

function chooseBackend(): Backend {
  const want = process.env.LUMEN_BACKEND;
  if (want === 'reference') return referenceBackend();
  const native = nativeLoader ? nativeLoader() : null;
  if (native) return native;
  if (want === 'native') throw new Error('LUMEN_BACKEND=native but the native addon is not available (run npm ci to build it)');
  if (process.env.LUMEN_QUIET_BACKEND !== '1') {
    console.error('lumen: native kernels unavailable, using the reference TypeScript backend (slow)');
  }
  return referenceBackend();
}

export function setBackend(b: Backend): void {
  current = b;
}

/** Runs fn with another backend as the current one. */
export function withBackend<T>(b: Backend, fn: () => T): T {
  const prev = current;
  current = b;
  try { return fn(); } finally { current = prev; }
}
