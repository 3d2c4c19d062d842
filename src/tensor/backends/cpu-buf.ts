/**
 * Storage of the CPU backends (reference and native): a typed array in JavaScript memory.
 * Both CPU backends share it, so a tensor made on one can be read by the other without a copy.
 */
import type { Buf, DType } from '../backend.ts';

export type HostArray = Float32Array | Int32Array | Float64Array;

export class CpuBuf implements Buf {
  readonly dtype: DType;
  constructor(readonly data: HostArray) {
    this.dtype = data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : 'float64';
  }
  get length(): number { return this.data.length; }
}

export function allocHost(dtype: DType, length: number): HostArray {
  switch (dtype) {
    case 'float32': return new Float32Array(length);
    case 'int32': return new Int32Array(length);
    case 'float64': return new Float64Array(length);
    default: return dtype satisfies never;
  }
}

/** The typed array behind a CPU buffer. */
export function host(b: Buf): HostArray {
  return (b as CpuBuf).data;
}

/**
 * Recycled storage for the native backend's `alloc`. Tensors have no explicit free: a buffer is
 * garbage once its CpuBuf is. A FinalizationRegistry hands the typed array of a collected CpuBuf
 * back here, and the next alloc of the same dtype and length reuses it.
 *
 * Why: a training step allocates and drops hundreds of activation and gradient buffers. As fresh
 * ArrayBuffers they cost a calloc (page faults, zeroing) each, and their external memory makes
 * V8 run a full mark-compact more than once per step (mm-small on a 2-core Zen 3: 364 in 300
 * steps), which the step's allocations then wait on.
 *
 * Two rules keep it safe:
 * - A pooled array is reachable only through its CpuBuf: `toHost` returns the storage for reads
 *   in place, and whatever keeps data (Tensor.toArray) copies it. Nothing may wrap the storage of
 *   an allocated buffer in a second CpuBuf.
 * - The registry's callbacks run only when the event loop turns, and until then it holds the
 *   arrays of dead buffers. So a synchronous loop would keep every array it allocates. After
 *   `pendingBytes` of registrations with no callback in between, alloc stops registering (plain
 *   arrays, freed by the GC as before) until callbacks come. Loops that want the reuse yield to
 *   the event loop once per step (`await yieldToEventLoop()`, src/util/event-loop.ts).
 */
export class BufferPool {
  private readonly free = new Map<string, HostArray[]>();
  private readonly registry = new FinalizationRegistry<HostArray>((data) => this.give(data));
  private bytes = 0;
  /** Bytes registered since the registry last called back. */
  private pending = 0;
  /** Recycled arrays, fresh registered ones, and fresh ones not registered (over `pendingBytes`). */
  reused = 0;
  created = 0;
  unpooled = 0;

  /**
   * @param capBytes storage kept for reuse at most; what comes back beyond it is left to the GC
   * @param pendingBytes registrations allowed between two registry callbacks
   * @param minLength shorter arrays are not pooled (allocating them is cheap)
   */
  constructor(readonly capBytes = 256 * 2 ** 20, readonly pendingBytes = 256 * 2 ** 20, readonly minLength = 64) {}

  /** A buffer of `length` elements: zero-filled, or with unspecified (old) contents when `zero` is false. */
  alloc(dtype: DType, length: number, zero = true): CpuBuf {
    if (length < this.minLength) return new CpuBuf(allocHost(dtype, length));
    const k = key(dtype, length);
    const list = this.free.get(k);
    let data: HostArray | undefined;
    if (list) {
      this.free.delete(k); // re-inserted as the most recently used
      data = list.pop();
      if (list.length) this.free.set(k, list);
    }
    if (data) {
      this.bytes -= data.byteLength;
      if (zero) data.fill(0);
      this.reused++;
    } else {
      data = allocHost(dtype, length);
      if (this.pending + data.byteLength > this.pendingBytes) {
        this.unpooled++;
        return new CpuBuf(data);
      }
      this.created++;
    }
    const b = new CpuBuf(data);
    this.registry.register(b, data);
    this.pending += data.byteLength;
    return b;
  }

  /** Storage kept for reuse now, in bytes. */
  get pooledBytes(): number { return this.bytes; }

  /** Takes back the storage of a collected buffer; over the cap, the least recently used sizes go first. */
  private give(data: HostArray): void {
    this.pending = 0;
    if (data.byteLength > this.capBytes) return;
    const k = key(data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : 'float64', data.length);
    for (const [old, list] of this.free) {
      if (this.bytes + data.byteLength <= this.capBytes) break;
      if (old === k) continue;
      for (const d of list) this.bytes -= d.byteLength;
      this.free.delete(old);
    }
    if (this.bytes + data.byteLength > this.capBytes) return; // its own size fills the pool
    const list = this.free.get(k);
    if (list) list.push(data); else this.free.set(k, [data]);
    this.bytes += data.byteLength;
  }
}

function key(dtype: DType, length: number): string { return `${dtype}:${length}`; }

