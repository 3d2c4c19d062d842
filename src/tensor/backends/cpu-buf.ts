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
