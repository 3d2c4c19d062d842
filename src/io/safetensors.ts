/**
 * safetensors read and write, with strict validation of every rule of the format.
 *
 * Layout of a file: 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON (the header), then the
 * byte buffer. The header maps each tensor name to `{dtype, shape, data_offsets: [begin, end]}`
 * (offsets relative to the byte buffer) and may hold `__metadata__`, a string→string map.
 *
 * Reading (`parseSafetensors`, `readSafetensors`) checks, in this order and before allocating
 * anything from a length found in the file: the file has at least 8 bytes; 0 < N <= 100 MB and
 * 8 + N <= file size; the header is valid UTF-8 and a JSON object with no duplicate keys;
 * `__metadata__` is a string→string map; each entry has exactly the keys dtype/shape/data_offsets,
 * a known dtype, a shape of non-negative safe integers and offsets [begin, end] with begin <= end;
 * sorted by begin the entries tile the byte buffer exactly (first begins at 0, each begins where the
 * previous ended, the last ends at the end of the file: no hole, no overlap, no trailing bytes);
 * product(shape) × dtype size = end − begin, computed in BigInt so it cannot overflow.
 * Any violation is an InputError naming the file and the rule.
 *
 * Element types on read (the `dtype` field keeps the file's dtype):
 *   F32 → Float32Array (a view without copy when the data is 4-byte aligned, else a copy),
 *   F16, BF16, F8_E4M3, F8_E5M2 → Float32Array (converted exactly: every value is representable),
 *   F64 → Float64Array, I64 → Int32Array (InputError if a value is outside the int32 range),
 *   I32 → Int32Array, U32 → Uint32Array, I16 → Int16Array, U16 → Uint16Array, I8 → Int8Array,
 *   U8 → Uint8Array, BOOL → Uint8Array (InputError if a byte is not 0 or 1). U64 is refused.
 *
 * Writing (`writeSafetensors`, `serializeSafetensors`) accepts F32, F16, BF16 (from Float32Array,
 * rounded to nearest even), F64, I64 (from Int32Array), I32, U8 and BOOL tensors; it orders them by
 * element size (largest first) then by name, so the output is deterministic and every tensor is
 * aligned to its element size; pads the header with spaces to a multiple of 8 bytes; writes little
 * endian; and writes the file atomically without first concatenating the tensors into one buffer.
 */
import { openSync, readSync, fstatSync, closeSync } from 'node:fs';
import { endianness } from 'node:os';
import { InputError, LumenError } from '../util/errors.ts';
import { writeFileAtomic } from '../util/fs.ts';

/** Largest header we accept (the reference implementation uses the same limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of every dtype the format defines and we understand. */
export const DTYPE_SIZES = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, U64: 8, I32: 4, U32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_SIZES;

/** The typed arrays a tensor is read into (see the table in the module comment). */
export type TensorData = Float32Array | Float64Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array;

/** One tensor as read from a file. */
export interface SafeTensor {
  /** The dtype stored in the file (the data may have been widened, e.g. BF16 → Float32Array). */
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

/** A parsed file. Tensors are listed in file order (sorted by offset). */
export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** One validated header entry. Offsets are relative to the byte buffer. */
export interface HeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A validated header: entries sorted by offset, plus where the byte buffer starts in the file. */
export interface SafetensorsHeader {
  entries: HeaderEntry[];
  metadata: Record<string, string>;
  /** 8 + N: file offset of the byte buffer. */
  dataStart: number;
}

const LITTLE_ENDIAN = endianness() === 'LE';

function fail(source: string, rule: string, detail: string): never {
  throw new InputError(`safetensors file ${source}: ${rule}: ${detail}`);
}

/**
 * Reads the header length from the first 8 bytes and checks its bounds against the file size.
 * Returns N. Nothing is allocated from N before this returns.
 */
export function checkHeaderLength(first8: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8 || first8.byteLength < 8) {
    fail(source, 'file too short', `a safetensors file starts with an 8-byte header length, but the file has ${fileSize} bytes`);
  }
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  const lo = dv.getUint32(0, true), hi = dv.getUint32(4, true);
  const n = hi * 4294967296 + lo; // exact while hi < 2^21; larger values are rejected by the bound below anyway
  if (n === 0) fail(source, 'header length', 'the header length (first 8 bytes, u64 little-endian) is 0; expected a JSON header of at least 2 bytes');
  if (hi !== 0 || n > MAX_HEADER_BYTES) {
    fail(source, 'header length', `the header length is ${hi !== 0 ? `${BigInt(hi) * 4294967296n + BigInt(lo)}` : n} bytes, above the limit of ${MAX_HEADER_BYTES} bytes (is this a safetensors file?)`);
  }
  if (8 + n > fileSize) {
    fail(source, 'header length', `the header length is ${n} bytes but the file has only ${fileSize - 8} bytes after the length field (truncated file?)`);
  }
  return n;
}

/**
 * Finds duplicate keys in any object of a JSON text that JSON.parse already accepted (JSON.parse
 * silently keeps the last of duplicate keys). Returns a description of the first duplicate or null.
 */
function findDuplicateKey(text: string): string | null {
  // Stack of open containers: a Set of keys for objects, null for arrays.
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      i++;
      while (i < text.length) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (top.has(key)) return key;
        top.add(key);
        expectKey = false;
      }
    } else if (c === 0x7b /* { */) { stack.push(new Set()); expectKey = true; }
    else if (c === 0x5b /* [ */) { stack.push(null); expectKey = false; }
    else if (c === 0x7d || c === 0x5d) { stack.pop(); expectKey = false; }
    else if (c === 0x2c /* , */) { expectKey = stack[stack.length - 1] != null; }
  }
  return null;
}

function isSafeNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validates the header bytes (N bytes after the length field) against a byte buffer of
 * `dataLength` bytes. Returns the entries sorted by offset.
 */
export function parseHeader(headerBytes: Uint8Array, dataLength: number, source: string): Omit<SafetensorsHeader, 'dataStart'> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    fail(source, 'header encoding', 'the JSON header is not valid UTF-8');
  }
  if (text.charCodeAt(0) !== 0x7b) fail(source, 'header JSON', `the header must be a JSON object starting with '{', found ${JSON.stringify(text.slice(0, 16))}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(source, 'header JSON', `the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(source, 'header JSON', 'the header must be a JSON object');
  const dup = findDuplicateKey(text);
  if (dup !== null) fail(source, 'duplicate key', `the key ${JSON.stringify(dup)} appears more than once in the header`);

  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(source, '__metadata__', 'must be an object mapping strings to strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(source, '__metadata__', `value of ${JSON.stringify(k)} must be a string, found ${v === null ? 'null' : typeof v}`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (name.length === 0) fail(source, 'tensor name', 'a tensor name is the empty string');
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(source, 'tensor entry', `${where} must be an object {dtype, shape, data_offsets}`);
    const obj = raw as Record<string, unknown>;
    for (const k of Object.keys(obj)) {
      if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') fail(source, 'tensor entry', `${where} has an unknown key ${JSON.stringify(k)} (expected dtype, shape, data_offsets)`);
    }
    const { dtype, shape, data_offsets: offs } = obj;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZES, dtype)) {
      fail(source, 'dtype', `${where} has dtype ${JSON.stringify(dtype)}; expected one of ${Object.keys(DTYPE_SIZES).join(', ')}`);
    }
    if (!Array.isArray(shape)) fail(source, 'shape', `${where} has shape ${JSON.stringify(shape)}; expected an array of non-negative integers`);
    for (const d of shape) {
      if (!isSafeNonNegInt(d)) fail(source, 'shape', `${where} has shape ${JSON.stringify(shape)}; every dimension must be a non-negative safe integer`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !isSafeNonNegInt(offs[0]) || !isSafeNonNegInt(offs[1])) {
      fail(source, 'data_offsets', `${where} has data_offsets ${JSON.stringify(offs)}; expected [begin, end] with non-negative integers`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) fail(source, 'data_offsets', `${where} has data_offsets [${begin}, ${end}]: begin is after end`);
    if (end > dataLength) fail(source, 'data_offsets', `${where} ends at byte ${end} of the byte buffer, which has only ${dataLength} bytes (outside the file)`);
    let count = 1n;
    for (const d of shape as number[]) count *= BigInt(d);
    const expected = count * BigInt(DTYPE_SIZES[dtype as SafetensorsDtype]);
    if (expected !== BigInt(end - begin)) {
      fail(source, 'size', `${where} with dtype ${dtype} and shape [${(shape as number[]).join(', ')}] needs ${expected} bytes but its data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: (shape as number[]).slice(), begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of entries) {
    if (e.begin !== pos) {
      if (e.begin < pos) fail(source, 'offsets overlap', `tensor ${JSON.stringify(e.name)} begins at byte ${e.begin}, inside the previous tensor (which ends at ${pos})`);
      fail(source, 'offsets not contiguous', `tensor ${JSON.stringify(e.name)} begins at byte ${e.begin} but the previous data ends at ${pos} (a hole of ${e.begin - pos} bytes)`);
    }
    pos = e.end;
  }
  if (pos !== dataLength) {
    fail(source, 'offsets not contiguous', `the tensors cover ${pos} bytes but the byte buffer after the header has ${dataLength} bytes (${dataLength - pos} unaccounted bytes at the end)`);
  }
  return { entries, metadata };
}

// ---------------------------------------------------------------------------------------------
// Element conversions

/** float16 bits → float32 value (exact). */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 → float16 bits, rounding to nearest even; overflow gives ±Infinity, NaN stays NaN. */
export function f32ToF16(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++; // carries into the exponent correctly, up to Infinity
  return sign | r;
}

/** float32 → bfloat16 bits, rounding to nearest even; NaN stays a quiet NaN. */
export function f32ToBf16(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff)) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

function fp8Table(expBits: number, manBits: number, fnVariant: boolean): Float32Array {
  const t = new Float32Array(256);
  const bias = (1 << (expBits - 1)) - 1;
  const maxE = (1 << expBits) - 1;
  for (let v = 0; v < 256; v++) {
    const s = v & 0x80 ? -1 : 1;
    const e = (v >> manBits) & maxE, m = v & ((1 << manBits) - 1);
    let x: number;
    if (fnVariant && e === maxE && m === (1 << manBits) - 1) x = NaN; // E4M3FN: only S.1111.111 is NaN, no infinities
    else if (!fnVariant && e === maxE) x = m ? NaN : s * Infinity;
    else if (e === 0) x = s * m * 2 ** (1 - bias - manBits);
    else x = s * (1 + m / (1 << manBits)) * 2 ** (e - bias);
    t[v] = x;
  }
  return t;
}
let E4M3: Float32Array | null = null, E5M2: Float32Array | null = null;

/** Converts the raw little-endian bytes of one tensor into its typed array (module comment has the table). */
function decodeTensor(e: HeaderEntry, bytes: Uint8Array, source: string): TensorData {
  const n = (e.end - e.begin) / DTYPE_SIZES[e.dtype];
  const aligned = (k: number) => bytes.byteOffset % k === 0;
  const where = `tensor ${JSON.stringify(e.name)}`;
  // Views share memory with `bytes` when aligned; otherwise `slice()` copies into a fresh aligned buffer.
  const src = (k: number): { buffer: ArrayBufferLike; offset: number } =>
    aligned(k) ? { buffer: bytes.buffer, offset: bytes.byteOffset } : { buffer: bytes.slice().buffer, offset: 0 };
  if (!LITTLE_ENDIAN && DTYPE_SIZES[e.dtype] > 1) throw new LumenError('safetensors: big-endian hosts are not supported');
  switch (e.dtype) {
    case 'F32': { const s = src(4); return new Float32Array(s.buffer, s.offset, n); }
    case 'F64': { const s = src(8); return new Float64Array(s.buffer, s.offset, n); }
    case 'I32': { const s = src(4); return new Int32Array(s.buffer, s.offset, n); }
    case 'U32': { const s = src(4); return new Uint32Array(s.buffer, s.offset, n); }
    case 'I16': { const s = src(2); return new Int16Array(s.buffer, s.offset, n); }
    case 'U16': { const s = src(2); return new Uint16Array(s.buffer, s.offset, n); }
    case 'I8': return new Int8Array(bytes.buffer, bytes.byteOffset, n);
    case 'U8': return new Uint8Array(bytes.buffer, bytes.byteOffset, n); // a plain Uint8Array even when given a Buffer
    case 'BOOL': {
      for (let i = 0; i < n; i++) if (bytes[i]! > 1) fail(source, 'BOOL value', `${where} element ${i} is ${bytes[i]}; BOOL bytes must be 0 or 1`);
      return new Uint8Array(bytes.buffer, bytes.byteOffset, n);
    }
    case 'F16': case 'BF16': {
      const s = src(2);
      const h = new Uint16Array(s.buffer, s.offset, n);
      const out = new Float32Array(n);
      if (e.dtype === 'BF16') {
        const o32 = new Uint32Array(out.buffer);
        for (let i = 0; i < n; i++) o32[i] = h[i]! << 16;
      } else {
        for (let i = 0; i < n; i++) out[i] = f16ToF32(h[i]!);
      }
      return out;
    }
    case 'F8_E4M3': case 'F8_E5M2': {
      const t = e.dtype === 'F8_E4M3' ? (E4M3 ??= fp8Table(4, 3, true)) : (E5M2 ??= fp8Table(5, 2, false));
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = t[bytes[i]!]!;
      return out;
    }
    case 'I64': {
      const s = src(8);
      const w = new Int32Array(s.buffer, s.offset, 2 * n); // (lo, hi) pairs
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = w[2 * i]!, hi = w[2 * i + 1]!;
        if (hi !== (lo >> 31)) {
          fail(source, 'I64 range', `${where} element ${i} is ${(BigInt(hi) << 32n) | BigInt(lo >>> 0)}, outside the int32 range Lumen reads I64 into`);
        }
        out[i] = lo;
      }
      return out;
    }
    case 'U64':
      fail(source, 'dtype', `${where} has dtype U64, which Lumen does not read`);
    default:
      return e.dtype satisfies never;
  }
}

/**
 * Parses a whole safetensors file held in memory. Tensor data are views into `buf` where the
 * alignment allows (so keep `buf` alive and unmodified), else copies.
 */
export function parseSafetensors(buf: Uint8Array, sourceName = '<buffer>'): SafetensorsFile {
  const n = checkHeaderLength(buf.subarray(0, 8), buf.byteLength, sourceName);
  const dataStart = 8 + n;
  const { entries, metadata } = parseHeader(buf.subarray(8, dataStart), buf.byteLength - dataStart, sourceName);
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    const bytes = buf.subarray(dataStart + e.begin, dataStart + e.end);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decodeTensor(e, bytes, sourceName) });
  }
  return { tensors, metadata };
}

function readExact(fd: number, into: Uint8Array, position: number, path: string): void {
  let off = 0;
  while (off < into.byteLength) {
    // Reads of at most 1 GiB at a time (the OS caps a single read near 2 GiB).
    const want = Math.min(into.byteLength - off, 1 << 30);
    const got = readSync(fd, into, off, want, position + off);
    if (got === 0) fail(path, 'file changed', `unexpected end of file at byte ${position + off} (was the file truncated while reading?)`);
    off += got;
  }
}

function withFile<T>(path: string, fn: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new InputError(`safetensors file ${path}: cannot open: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new InputError(`safetensors file ${path}: not a regular file`);
    return fn(fd, st.size);
  } finally {
    closeSync(fd);
  }
}

function readHeaderFd(fd: number, size: number, path: string): SafetensorsHeader {
  const first8 = new Uint8Array(8);
  if (size >= 8) readExact(fd, first8, 0, path);
  const n = checkHeaderLength(first8, size, path);
  const header = new Uint8Array(n); // n is bounded: <= 100 MB and <= file size
  readExact(fd, header, 8, path);
  return { ...parseHeader(header, size - 8 - n, path), dataStart: 8 + n };
}

/** Reads and validates only the header of a file (names, dtypes, shapes, metadata), not the data. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  return withFile(path, (fd, size) => readHeaderFd(fd, size, path));
}

/**
 * Reads a safetensors file. Each tensor is read straight into its own buffer (so every tensor is
 * aligned and no second copy of the file is held), which also works for files above 2 GB.
 */
export function readSafetensors(path: string): SafetensorsFile {
  return withFile(path, (fd, size) => {
    const h = readHeaderFd(fd, size, path);
    const tensors = new Map<string, SafeTensor>();
    for (const e of h.entries) {
      const bytes = new Uint8Array(e.end - e.begin); // validated: inside the file
      readExact(fd, bytes, h.dataStart + e.begin, path);
      tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decodeTensor(e, bytes, path) });
    }
    return { tensors, metadata: h.metadata };
  });
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Dtypes the writer produces. */
export type WritableDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8' | 'BOOL';

/** A tensor to write. `dtype` defaults from the array: Float32Array → F32, Float64Array → F64, Int32Array → I32, Uint8Array → U8. */
export interface TensorToWrite {
  dtype?: WritableDtype;
  shape: readonly number[];
  data: Float32Array | Float64Array | Int32Array | Uint8Array;
}

/** Which array each written dtype takes. */
const WRITE_SOURCE: Record<WritableDtype, Float32ArrayConstructor | Float64ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor> = {
  F64: Float64Array, F32: Float32Array, F16: Float32Array, BF16: Float32Array,
  I64: Int32Array, I32: Int32Array, U8: Uint8Array, BOOL: Uint8Array,
};

function defaultDtype(data: TensorToWrite['data']): WritableDtype {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  return 'U8';
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function encodeTensor(name: string, dtype: WritableDtype, data: TensorToWrite['data']): Uint8Array {
  if (!LITTLE_ENDIAN) throw new LumenError('safetensors: big-endian hosts are not supported');
  switch (dtype) {
    case 'F64': case 'F32': case 'I32': case 'U8': return bytesOf(data);
    case 'BOOL': {
      for (let i = 0; i < data.length; i++) if (data[i] !== 0 && data[i] !== 1) throw new InputError(`writeSafetensors: tensor ${JSON.stringify(name)} is BOOL but element ${i} is ${data[i]}; expected 0 or 1`);
      return bytesOf(data);
    }
    case 'F16': case 'BF16': {
      const out = new Uint16Array(data.length);
      const conv = dtype === 'F16' ? f32ToF16 : f32ToBf16;
      for (let i = 0; i < data.length; i++) out[i] = conv(data[i]!);
      return bytesOf(out);
    }
    case 'I64': {
      const out = new Int32Array(2 * data.length);
      for (let i = 0; i < data.length; i++) { out[2 * i] = data[i]!; out[2 * i + 1] = data[i]! < 0 ? -1 : 0; }
      return bytesOf(out);
    }
    default:
      return dtype satisfies never;
  }
}

/**
 * Serialises tensors to the safetensors format as a list of byte parts (length field + header,
 * then one part per tensor; F32/F64/I32/U8 parts are views of the caller's arrays, not copies).
 */
export function serializeSafetensors(
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): Uint8Array[] {
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new InputError(`writeSafetensors: metadata ${JSON.stringify(k)} must be a string, got ${typeof v}`);
  }
  const items = list.map(([name, t]) => {
    if (name.length === 0 || name === '__metadata__') throw new InputError(`writeSafetensors: invalid tensor name ${JSON.stringify(name)}`);
    const dtype = t.dtype ?? defaultDtype(t.data);
    if (!Object.hasOwn(WRITE_SOURCE, dtype)) throw new InputError(`writeSafetensors: tensor ${JSON.stringify(name)}: cannot write dtype ${dtype}; expected one of ${Object.keys(WRITE_SOURCE).join(', ')}`);
    if (!(t.data instanceof WRITE_SOURCE[dtype])) {
      throw new InputError(`writeSafetensors: tensor ${JSON.stringify(name)}: dtype ${dtype} is written from a ${WRITE_SOURCE[dtype].name}, got a ${t.data?.constructor?.name ?? typeof t.data}`);
    }
    let count = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw new InputError(`writeSafetensors: tensor ${JSON.stringify(name)}: bad shape [${t.shape.join(', ')}]`);
      count *= d;
    }
    if (count !== t.data.length) throw new InputError(`writeSafetensors: tensor ${JSON.stringify(name)}: shape [${t.shape.join(', ')}] has ${count} elements but the data has ${t.data.length}`);
    return { name, dtype, shape: [...t.shape], data: t.data };
  });
  // Largest element first keeps every tensor aligned to its element size; then by name (deterministic).
  items.sort((a, b) => DTYPE_SIZES[b.dtype] - DTYPE_SIZES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const seen = new Set<string>();
  const header: Record<string, unknown> = {};
  const metaKeys = Object.keys(metadata).sort();
  if (metaKeys.length > 0) header['__metadata__'] = Object.fromEntries(metaKeys.map((k) => [k, metadata[k]])); // sorted: deterministic bytes
  const parts: Uint8Array[] = [];
  let off = 0;
  for (const it of items) {
    if (seen.has(it.name)) throw new InputError(`writeSafetensors: duplicate tensor name ${JSON.stringify(it.name)}`);
    seen.add(it.name);
    const bytes = encodeTensor(it.name, it.dtype, it.data);
    header[it.name] = { dtype: it.dtype, shape: it.shape, data_offsets: [off, off + bytes.byteLength] };
    off += bytes.byteLength;
    parts.push(bytes);
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return [head, ...parts];
}

/** Writes tensors and metadata to `path` atomically (temporary file, fsync, rename). */
export function writeSafetensors(
  path: string,
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
