/**
 * Lets the event loop turn once: timers, I/O callbacks and FinalizationRegistry callbacks run.
 * A training loop awaits it once per step so that the native backend's buffer pool gets back the
 * storage of the step's dead tensors (src/tensor/backends/cpu-buf.ts, BufferPool).
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
