import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseSafetensors, readSafetensors, readSafetensorsHeader, writeSafetensors, serializeSafetensors,
  f16ToF32, f32ToF16, f32ToBf16, MAX_HEADER_BYTES,
} from '../../src/io/safetensors.ts';
import { InputError } from '../../src/util/errors.ts';
import { Rng } from '../../src/tensor/rng.ts';

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.byteLength; }
  return out;
}

/** Builds a file from a header (object or raw text) and a byte buffer, with an optional forced length field. */
function build(header: unknown, data: Uint8Array | number = 0, lengthOverride?: bigint): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = new TextEncoder().encode(text);
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.byteLength), true);
  return concat([head, h, typeof data === 'number' ? new Uint8Array(data) : data]);
}

test('round trip of every writable dtype through a file, with metadata', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-st-'));
  try {
    const path = join(dir, 'm.safetensors');
    const f32 = Float32Array.from([1.5, -2.25, 3e-8, 65504, -0]);
    const halfExact = Float32Array.from([0.5, -1, 1024, 6.103515625e-05, 2 ** -24]);
    const i32 = Int32Array.from([0, -1, 2147483647, -2147483648]);
    writeSafetensors(path, {
      'b.weight': { shape: [5], data: f32 },
      'a.h': { dtype: 'F16', shape: [5], data: halfExact },
      'a.bf': { dtype: 'BF16', shape: [1, 5], data: halfExact },
      'c.i': { shape: [2, 2], data: i32 },
      'c.l': { dtype: 'I64', shape: [4], data: i32 },
      'd.u8': { shape: [3], data: Uint8Array.from([0, 7, 255]) },
      'e.bool': { dtype: 'BOOL', shape: [2], data: Uint8Array.from([1, 0]) },
      'f.f64': { shape: [1], data: Float64Array.from([Math.PI]) },
      'g.empty': { shape: [0, 3], data: new Float32Array(0) },
    }, { format: 'pt', step: '12' });
    const bytes = readFileSync(path);
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    assert.equal(n % 8, 0, 'header padded to 8 bytes');
    assert.equal(bytes[8 + n - 1] === 0x20 || bytes[8 + n - 1] === 0x7d, true);
    for (const file of [readSafetensors(path), parseSafetensors(bytes, path)]) {
      assert.deepEqual(file.metadata, { format: 'pt', step: '12' });
      // Largest element size first, then by name.
      assert.deepEqual([...file.tensors.keys()], ['c.l', 'f.f64', 'b.weight', 'c.i', 'g.empty', 'a.bf', 'a.h', 'd.u8', 'e.bool']);
      const t = (k: string) => file.tensors.get(k)!;
      assert.deepEqual(t('b.weight').data, f32);
      assert.equal(t('a.h').dtype, 'F16');
      assert.deepEqual(t('a.h').data, halfExact);
      assert.deepEqual(t('a.bf').data, halfExact);
      assert.deepEqual(t('a.bf').shape, [1, 5]);
      assert.deepEqual(t('c.i').data, i32);
      assert.deepEqual(t('c.l').data, i32);
      assert.equal(t('c.l').dtype, 'I64');
      assert.deepEqual(t('d.u8').data, Uint8Array.from([0, 7, 255]));
      assert.deepEqual(t('e.bool').data, Uint8Array.from([1, 0]));
      assert.deepEqual(t('f.f64').data, Float64Array.from([Math.PI]));
      assert.deepEqual(t('g.empty').shape, [0, 3]);
    }
    // The same tensors in another order give the same bytes.
    const again = concat(serializeSafetensors(new Map([
      ['g.empty', { shape: [0, 3], data: new Float32Array(0) }],
      ['f.f64', { shape: [1], data: Float64Array.from([Math.PI]) }],
      ['e.bool', { dtype: 'BOOL', shape: [2], data: Uint8Array.from([1, 0]) }],
      ['d.u8', { shape: [3], data: Uint8Array.from([0, 7, 255]) }],
      ['c.l', { dtype: 'I64', shape: [4], data: i32 }],
      ['c.i', { shape: [2, 2], data: i32 }],
      ['b.weight', { shape: [5], data: f32 }],
      ['a.bf', { dtype: 'BF16', shape: [1, 5], data: halfExact }],
      ['a.h', { dtype: 'F16', shape: [5], data: halfExact }],
    ] as const), { step: '12', format: 'pt' }));
    assert.deepEqual(again, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    assert.equal(readSafetensorsHeader(path).entries.length, 9);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('F32 data is a view when aligned and a copy when not', () => {
  const file = concat(serializeSafetensors({ w: { shape: [3], data: Float32Array.from([1, 2, 3]) } }));
  const aligned = parseSafetensors(file);
  assert.equal(aligned.tensors.get('w')!.data.buffer, file.buffer);
  const shifted = new Uint8Array(file.byteLength + 1);
  shifted.set(file, 1);
  const un = parseSafetensors(shifted.subarray(1));
  assert.notEqual(un.tensors.get('w')!.data.buffer, shifted.buffer);
  assert.deepEqual(un.tensors.get('w')!.data, Float32Array.from([1, 2, 3]));
});

test('half and bfloat16 conversions round to nearest even', () => {
  for (let h = 0; h < 65536; h++) {
    const x = f16ToF32(h);
    if (Number.isNaN(x)) assert.ok(Number.isNaN(f16ToF32(f32ToF16(x))));
    else assert.equal(f32ToF16(x), h, `f16 bits ${h}`);
  }
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
  assert.equal(f32ToF16(70000), 0x7c00);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80);
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(f32ToBf16(-2), 0xc000);
});

test('the writer refuses inconsistent input', () => {
  assert.throws(() => serializeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } }), /shape \[2, 2\] has 4 elements but the data has 3/);
  assert.throws(() => serializeSafetensors({ w: { dtype: 'F16', shape: [1], data: new Int32Array(1) } }), /written from a Float32Array, got a Int32Array/);
  assert.throws(() => serializeSafetensors({ __metadata__: { shape: [1], data: new Float32Array(1) } }), /invalid tensor name/);
  // A Node Buffer is a Uint8Array and is accepted as U8.
  const parts = serializeSafetensors({ b: { shape: [2], data: Buffer.from([3, 4]) } });
  assert.deepEqual(parseSafetensors(concat(parts)).tensors.get('b')!.data, Uint8Array.from([3, 4]));
});

const F32x2 = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
/** Each malformed file and the rule its error must name. */
const MALFORMED: [string, Uint8Array, RegExp][] = [
  ['empty file', new Uint8Array(0), /file too short.*has 0 bytes/],
  ['7 bytes', new Uint8Array(7), /file too short/],
  ['header length 0', build('', 0, 0n), /header length.*is 0/],
  ['header length > 100 MB', build('{}', 0, BigInt(MAX_HEADER_BYTES + 1)), /header length.*above the limit/],
  ['header length 2^63', build('{}', 0, 1n << 63n), /header length.*9223372036854775808 bytes, above the limit/],
  ['header length past the end', build('{}', 0, 3n), /header length.*only 2 bytes after/],
  ['invalid UTF-8', concat([build('{"a":"').subarray(0, 14), Uint8Array.from([0xff, 0x22, 0x7d])]).map((b, i) => (i === 0 ? 9 : b)), /not valid UTF-8/],
  ['not JSON', build('{nope}'), /not valid JSON/],
  ['JSON array', build('[1,2]'), /JSON object starting with/],
  ['metadata not a map', build({ __metadata__: ['x'] }), /__metadata__: must be an object/],
  ['metadata value not a string', build({ __metadata__: { step: 3 } }), /__metadata__: value of "step" must be a string, found number/],
  ['duplicate tensor name', build(`{"w":${JSON.stringify(F32x2)},"w":${JSON.stringify(F32x2)}}`, 8), /duplicate key.*"w"/],
  ['duplicate key inside an entry', build('{"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8), /duplicate key.*"dtype"/],
  ['empty tensor name', build({ '': F32x2 }, 8), /tensor name.*empty/],
  ['entry not an object', build({ w: 3 }), /tensor entry.*must be an object/],
  ['unknown key', build({ w: { ...F32x2, extra: 1 } }, 8), /unknown key "extra"/],
  ['unknown dtype', build({ w: { ...F32x2, dtype: 'F12' } }, 8), /dtype.*"F12"; expected one of/],
  ['missing dtype', build({ w: { shape: [2], data_offsets: [0, 8] } }, 8), /dtype.*undefined/],
  ['shape not an array', build({ w: { ...F32x2, shape: 2 } }, 8), /shape.*expected an array/],
  ['negative dimension', build({ w: { ...F32x2, shape: [-2] } }, 8), /shape.*non-negative safe integer/],
  ['fractional dimension', build({ w: { ...F32x2, shape: [1.5] } }, 8), /shape.*non-negative safe integer/],
  ['unsafe dimension', build({ w: { ...F32x2, shape: [2 ** 60] } }, 8), /shape.*non-negative safe integer/],
  ['offsets not a pair', build({ w: { ...F32x2, data_offsets: [0] } }, 8), /data_offsets.*expected \[begin, end\]/],
  ['begin after end', build({ w: { ...F32x2, data_offsets: [8, 0] } }, 8), /begin is after end/],
  ['offsets outside the file', build({ w: { ...F32x2, data_offsets: [0, 80] } }, 8), /outside the file/],
  ['size mismatch', build({ w: { ...F32x2, shape: [3] } }, 8), /size.*needs 12 bytes but its data_offsets \[0, 8\] span 8/],
  ['size overflow', build({ w: { ...F32x2, shape: [2 ** 40, 2 ** 40, 2 ** 40], data_offsets: [0, 0] } }), /size.*needs 5316911983139663491615228241121378304 bytes/],
  ['hole', build({ a: F32x2, b: { ...F32x2, data_offsets: [12, 20] } }, 20), /not contiguous.*"b" begins at byte 12.*hole of 4/],
  ['overlap', build({ a: F32x2, b: { ...F32x2, data_offsets: [4, 12] } }, 12), /overlap.*"b" begins at byte 4/],
  ['first not at 0', build({ a: { ...F32x2, data_offsets: [4, 12] } }, 12), /not contiguous.*begins at byte 4 but the previous data ends at 0/],
  ['trailing bytes', build({ a: F32x2 }, 12), /not contiguous.*4 unaccounted bytes/],
  ['bad BOOL', build({ b: { dtype: 'BOOL', shape: [2], data_offsets: [0, 2] } }, Uint8Array.from([1, 2])), /BOOL value.*element 1 is 2/],
  ['I64 out of int32 range', build({ l: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, Uint8Array.from([0, 0, 0, 0, 1, 0, 0, 0])), /I64 range.*4294967296/],
  ['U64 unsupported', build({ l: { dtype: 'U64', shape: [1], data_offsets: [0, 8] } }, 8), /U64/],
];

test('malformed files are refused with an InputError naming the rule', () => {
  for (const [what, bytes, re] of MALFORMED) {
    assert.throws(() => parseSafetensors(bytes, 'bad.safetensors'), (e: unknown) => {
      assert.ok(e instanceof InputError, `${what}: expected InputError, got ${e}`);
      assert.match(e.message, /^safetensors file bad\.safetensors: /, what);
      assert.match(e.message, re, what);
      return true;
    }, what);
  }
});

test('malformed files on disk are refused by the file reader too', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-st-'));
  try {
    for (const [what, bytes, re] of MALFORMED) {
      const p = join(dir, 'x.safetensors');
      writeFileSync(p, bytes);
      assert.throws(() => readSafetensors(p), (e: unknown) => e instanceof InputError && re.test(e.message) && e.message.includes(p), what);
    }
    assert.throws(() => readSafetensors(join(dir, 'missing.safetensors')), (e: unknown) => e instanceof InputError && /cannot open/.test(e.message));
    assert.throws(() => readSafetensors(dir), (e: unknown) => e instanceof InputError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fuzz: truncations and bit flips only ever raise InputError', () => {
  const rng = new Rng(1234);
  const valid = concat(serializeSafetensors({
    'a': { shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    'b': { dtype: 'BF16', shape: [2], data: Float32Array.from([1, 2]) },
    'c': { dtype: 'I64', shape: [2], data: Int32Array.from([-5, 9]) },
    'd': { dtype: 'BOOL', shape: [3], data: Uint8Array.from([0, 1, 1]) },
    'e': { dtype: 'F16', shape: [1, 1], data: Float32Array.from([0.25]) },
  }, { note: 'fuzz' }));
  let refused = 0;
  for (let it = 0; it < 4000; it++) {
    let buf: Uint8Array;
    const kind = it % 3;
    if (kind === 0) buf = valid.slice(0, rng.int(valid.byteLength));
    else {
      buf = valid.slice();
      const flips = 1 + rng.int(4);
      for (let k = 0; k < flips; k++) {
        // Half of the flips land in the length field or the header, where they matter most.
        const pos = rng.uniform() < 0.5 ? rng.int(Math.min(buf.byteLength, 200)) : rng.int(buf.byteLength);
        buf[pos]! ^= 1 << rng.int(8);
      }
      if (kind === 2) buf = buf.slice(0, buf.byteLength - rng.int(9));
    }
    try {
      parseSafetensors(buf, 'fuzz');
    } catch (e) {
      assert.ok(e instanceof InputError, `iteration ${it}: expected InputError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
      refused++;
    }
  }
  assert.ok(refused > 2000, `most mutations are refused (${refused})`);
});
