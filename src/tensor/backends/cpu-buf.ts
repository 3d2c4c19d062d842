/**
 * Storage of the CPU backends (reference and native): a typed array in JavaScript memory.
 * Both CPU backends share it, so a tensor made on one can be read by the other without a copy.
 */
import type { Buf, DType } from '../backend.ts';
import { OpError } from '../../util/errors.ts';

export type HostArray = Float32Array | Int32Array | Float64Array;

export class CpuBuf implements Buf {
  readonly dtype: DType;
  private store: HostArray | null;
  constructor(data: HostArray) {
    this.store = data;
    this.dtype = data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : 'float64';
  }
  /** The storage; throws once a step scope has released the buffer (its storage is someone else's now). */
  get data(): HostArray {
    if (this.store === null) throw new OpError('buffer', 'used after the training step that allocated it ended (a tensor made inside a step scope outlived it; pass it in keep)');
    return this.store;
  }
  get length(): number { return this.data.length; }
  /** Hands the storage over (to the pool) and leaves this buffer unusable. */
  take(): HostArray {
    const s = this.data;
    this.store = null;
    return s;
  }
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
 *
 * Step scopes make the reuse deterministic. Between `beginStep()` and `endStep(keep)` every
 * buffer alloc hands out is recorded instead of registered; `endStep` takes the storage of all of
 * them but `keep` back at once (a training step's activations and gradients are garbage once the
 * optimizer has run and the gradients are cleared). The next step then finds every size it needs
 * in the pool: no fresh ArrayBuffer, no external-memory growth for V8 to collect, no page faults
 * on first touch. A released CpuBuf throws on any use, so a tensor that outlives its step by
 * mistake fails loudly instead of reading storage that another tensor now owns. If the step
 * throws, `abortStep()` registers the recorded buffers with the registry as usual.
 */
export class BufferPool {
  private readonly free = new Map<string, HostArray[]>();
  private readonly registry = new FinalizationRegistry<HostArray>((data) => { this.pending = 0; this.give(data); });
  /** Buffers allocated in the open step scope, or null when none is open; and their bytes. */
  private scope: CpuBuf[] | null = null;
  private scopeBytes = 0;
  private bytes = 0;
  /** Bytes registered since the registry last called back. */
  private pending = 0;
  /** Recycled arrays, fresh ones, and arrays handed out unregistered (over `pendingBytes`: left to the GC). */
  reused = 0;
  created = 0;
  unpooled = 0;
  /** Buffers given back by step scopes. */
  released = 0;
  /**
   * Debugging: fill storage with NaN (int32: -2^31) as it comes back, so an op that reads an
   * unzeroed output before writing it shows up as NaN. LUMEN_POOL_POISON=1 sets it on the native backend.
   */
  poison = false;

  /**
   * @param capBytes storage kept for reuse at most (after a step scope, at least that step's); beyond
   *   it storage is left to the GC; 0 turns the pool off
   * @param pendingBytes registrations allowed between two registry callbacks
   * @param minLength shorter arrays are not pooled (allocating them is cheap)
   * @param stepBytes storage one step scope records at most; past it the step's buffers are plain
   *   arrays, which the GC may free during the step (that bounds the step's peak memory)
   */
  constructor(private cap_ = 256 * 2 ** 20, private pending_ = 256 * 2 ** 20, readonly minLength = 64,
              readonly stepBytes = 4 * 2 ** 30) {}

  get capBytes(): number { return this.cap_; }
  get pendingBytes(): number { return this.pending_; }

  /**
   * Raises the cap and the pending limit to at least `bytes` (never lowers them; a pool that is
   * off stays off): for a job whose phases each allocate their own sizes, so that one phase's
   * storage is still there when its next turn comes.
   */
  reserve(bytes: number): void {
    if (this.cap_ === 0) return;
    this.cap_ = Math.max(this.cap_, bytes);
    this.pending_ = Math.max(this.pending_, bytes);
  }

  /** A buffer of `length` elements: zero-filled, or with unspecified (old) contents when `zero` is false. */
  alloc(dtype: DType, length: number, zero = true): CpuBuf {
    if (length < this.minLength) return new CpuBuf(allocHost(dtype, length));
    const size = this.capBytes > 0 ? sizeClass(length) : length;
    const k = key(dtype, size);
    const list = this.free.get(k);
    let full: HostArray | undefined;
    if (list) {
      this.free.delete(k); // re-inserted as the most recently used
      full = list.pop();
      if (list.length) this.free.set(k, list);
    }
    // A request shorter than its size class gets a view of the first `length` elements.
    const view = (a: HostArray) => (a.length === length ? a : a.subarray(0, length));
    let data: HostArray;
    if (full) {
      this.bytes -= full.byteLength;
      data = view(full);
      if (zero) data.fill(0);
      this.reused++;
    } else {
      full = allocHost(dtype, size);
      data = view(full);
      this.created++;
    }
    const b = new CpuBuf(data);
    if (this.scope) {
      // Past stepBytes a step's buffers are plain arrays: the GC can free them during the step,
      // which bounds its peak (storage recorded here stays alive until the step ends).
      if (this.capBytes > 0 && this.scopeBytes + full.byteLength <= this.stepBytes) {
        this.scope.push(b);
        this.scopeBytes += full.byteLength;
      } else this.unpooled++;
    } else if (this.pending + full.byteLength <= this.pendingBytes) {
      this.track(b);
    } else this.unpooled++;
    return b;
  }

  private track(b: CpuBuf): void {
    const data = b.data;
    this.registry.register(b, data);
    this.pending += data.buffer.byteLength;
  }

  /** Opens a step scope (see the class comment); one at a time. */
  beginStep(): void {
    if (this.scope) throw new OpError('beginStep', 'a step scope is already open');
    this.scope = [];
    this.scopeBytes = 0;
  }

  /**
   * Closes the step scope: the storage of every buffer allocated in it, except those in `keep`, goes
   * back to the pool and those buffers become unusable. Kept ones are registered as usual.
   */
  endStep(keep: Iterable<Buf> = []): void {
    const bufs = this.scope;
    if (!bufs) throw new OpError('endStep', 'no step scope is open');
    this.scope = null;
    const kept = new Set(keep);
    // The step's storage was all alive at its end anyway, so keeping it for the next step adds
    // nothing to the peak: the cap here is at least the step's own bytes.
    const cap = Math.max(this.capBytes, this.scopeBytes);
    for (const b of bufs) {
      if (kept.has(b)) { this.track(b); continue; }
      this.give(b.take(), cap);
      this.released++;
    }
  }

  /** Closes the step scope without releasing anything: its buffers are left to the GC as usual. */
  abortStep(): void {
    const bufs = this.scope;
    this.scope = null;
    if (bufs) for (const b of bufs) this.track(b);
  }

  /** Whether a step scope is open. */
  get inStep(): boolean { return this.scope !== null; }

  /** Storage kept for reuse now, in bytes. */
  get pooledBytes(): number { return this.bytes; }

  /** Takes back the storage of a collected or released buffer; over the cap, the least recently used sizes go first. */
  private give(given: HostArray, cap = this.capBytes): void {
    const data = whole(given);
    if (data.byteLength > cap) return;
    if (this.poison) data.fill(data instanceof Int32Array ? -(2 ** 31) : Number.NaN);
    const k = key(data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : 'float64', data.length);
    for (const [old, list] of this.free) {
      if (this.bytes + data.byteLength <= cap) break;
      if (old === k) continue;
      // one array at a time: the other sizes keep what the cap leaves room for
      while (list.length > 0 && this.bytes + data.byteLength > cap) this.bytes -= list.pop()!.byteLength;
      if (list.length === 0) this.free.delete(old);
    }
    if (this.bytes + data.byteLength > cap) return; // its own size fills the pool
    const list = this.free.get(k);
    if (list) list.push(data); else this.free.set(k, [data]);
    this.bytes += data.byteLength;
  }
}

function key(dtype: DType, length: number): string { return `${dtype}:${length}`; }

/**
 * Elements the pool allocates for a request of `length`: from 4,096 elements up, sizes round up to
 * the next multiple of 1/8 of their power of two (at most 12.5% unused). Batches whose padded
 * length changes from step to step (RLHF rollouts, packed SFT rows) then find storage of the
 * right class in the pool instead of allocating fresh arrays at every step.
 */
export function sizeClass(length: number): number {
  if (length < 4096) return length;
  const q = 2 ** Math.floor(Math.log2(length)) / 8;
  return Math.ceil(length / q) * q;
}

/** The whole array a pooled buffer is a view of (pool views always start at offset 0). */
function whole(a: HostArray): HostArray {
  if (a.byteLength === a.buffer.byteLength) return a;
  return a instanceof Float32Array ? new Float32Array(a.buffer) : a instanceof Int32Array ? new Int32Array(a.buffer) : new Float64Array(a.buffer as ArrayBuffer);
}

