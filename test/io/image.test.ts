import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeImage, decodeImageFile, decodeImageDataUrl, checkImage, imageFromDataUrl, sniffImageFormat, readImageDimensions } from '../../src/io/image.ts';
import { InputError } from '../../src/util/errors.ts';
import { Rng } from '../../src/tensor/rng.ts';

/** A w×h image: left half red, right half blue (so orientation and scaling can be checked). */
async function twoTone(w: number, h: number, format: 'png' | 'jpeg' | 'webp' | 'gif', alpha = false): Promise<Uint8Array> {
  const ch = alpha ? 4 : 3;
  const raw = Buffer.alloc(w * h * ch);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * ch;
      if (x < w / 2) raw[o] = 255; else raw[o + 2] = 255;
      if ((x * 7 + y * 13) % 11 === 0) raw[o + 1] = 40; // a little texture, so encoded files are not trivially small
      if (alpha) raw[o + 3] = y < h / 2 ? 255 : 0; // bottom half transparent
    }
  }
  const img = sharp(raw, { raw: { width: w, height: h, channels: ch } });
  const enc = format === 'jpeg' ? img.jpeg({ quality: 95 }) : format === 'webp' ? img.webp({ lossless: true }) : format === 'gif' ? img.gif() : img.png();
  return new Uint8Array(await enc.toBuffer());
}

/** Pixel (c, y, x) of a (3, S, S) image. */
const px = (p: Float32Array, S: number, c: number, y: number, x: number) => p[c * S * S + y * S + x]!;

async function rejects(p: Promise<unknown>, re: RegExp, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof InputError, `${what}: expected InputError, got ${e}`);
    assert.match(e.message, re, what);
    return true;
  }, what);
}

test('each format decodes to (3, S, S) with the right colours', async () => {
  for (const format of ['png', 'jpeg', 'webp', 'gif'] as const) {
    const bytes = await twoTone(32, 32, format);
    assert.equal(sniffImageFormat(bytes), format);
    assert.deepEqual(readImageDimensions(bytes, format), { width: 32, height: 32 });
    const img = await decodeImage(bytes, { size: 16 });
    assert.equal(img.format, format);
    assert.equal(img.pixels.length, 3 * 16 * 16);
    assert.deepEqual([img.width, img.height], [32, 32]);
    const tol = format === 'jpeg' ? 0.15 : 0.02;
    // Left: red → (1, -1, -1); right: blue → (-1, -1, 1) with default mean = std = 0.5.
    for (const [c, want] of [[0, 1], [1, -1], [2, -1]] as const) assert.ok(Math.abs(px(img.pixels, 16, c, 8, 2) - want) < tol, `${format} left c${c}`);
    for (const [c, want] of [[0, -1], [1, -1], [2, 1]] as const) assert.ok(Math.abs(px(img.pixels, 16, c, 8, 13) - want) < tol, `${format} right c${c}`);
  }
  // Lossy WebP (VP8 chunk) reads its dimensions too.
  const lossy = new Uint8Array(await sharp({ create: { width: 37, height: 21, channels: 3, background: '#808080' } }).webp({ quality: 80 }).toBuffer());
  assert.deepEqual(readImageDimensions(lossy, 'webp'), { width: 37, height: 21 });
  const extended = new Uint8Array(await sharp({ create: { width: 37, height: 21, channels: 4, background: { r: 1, g: 2, b: 3, alpha: 0.5 } } }).webp({ quality: 80 }).toBuffer());
  assert.deepEqual(readImageDimensions(extended, 'webp'), { width: 37, height: 21 });
  const jpeg = await twoTone(45, 17, 'jpeg');
  assert.deepEqual(readImageDimensions(jpeg, 'jpeg'), { width: 45, height: 17 });
});

test('aspect ratio kept, padding centred with the mean colour (0), mean/std applied', async () => {
  const wide = await twoTone(40, 20, 'png');
  const a = await decodeImage(wide, { size: 16 });
  assert.deepEqual(a.content, { x: 0, y: 4, width: 16, height: 8 });
  for (let c = 0; c < 3; c++) {
    for (const y of [0, 3, 12, 15]) for (let x = 0; x < 16; x++) assert.equal(px(a.pixels, 16, c, y, x), 0);
  }
  assert.ok(px(a.pixels, 16, 0, 4, 0) > 0.95 && px(a.pixels, 16, 2, 11, 15) > 0.95);
  const tall = await twoTone(10, 30, 'png');
  const b = await decodeImage(tall, { size: 12, mean: [0, 0, 0], std: [1, 1, 1] });
  assert.deepEqual(b.content, { x: 4, y: 0, width: 4, height: 12 });
  assert.equal(px(b.pixels, 12, 0, 6, 0), 0);
  assert.ok(px(b.pixels, 12, 0, 6, 4) > 0.97, 'red in [0, 1] with mean 0, std 1');
  // Small images are scaled up.
  const small = await decodeImage(await twoTone(4, 4, 'png'), { size: 8 });
  assert.deepEqual(small.content, { x: 0, y: 0, width: 8, height: 8 });
});

test('alpha is flattened onto white, GIF gives its first frame', async () => {
  const img = await decodeImage(await twoTone(16, 16, 'png', true), { size: 16 });
  for (let c = 0; c < 3; c++) assert.ok(px(img.pixels, 16, c, 14, 2) > 0.98, 'transparent → white');
  // Two-frame GIF: frame 0 green, frame 1 black.
  const frames = Buffer.alloc(8 * 16 * 3);
  for (let i = 0; i < 8 * 8; i++) frames[i * 3 + 1] = 255;
  const gif = new Uint8Array(await sharp(frames, { raw: { width: 8, height: 16, channels: 3, pageHeight: 8 } }).gif().toBuffer());
  const g = await decodeImage(gif, { size: 8 });
  assert.deepEqual([g.width, g.height], [8, 8]);
  assert.ok(px(g.pixels, 8, 1, 4, 4) > 0.95 && px(g.pixels, 8, 0, 4, 4) < -0.95);
});

test('a decompression bomb is refused from its header, before decoding', async () => {
  const png = await twoTone(8, 8, 'png');
  const bomb = png.slice();
  new DataView(bomb.buffer).setUint32(16, 50000); // IHDR width
  new DataView(bomb.buffer).setUint32(20, 50000); // IHDR height
  // checkImage is synchronous and looks only at the header: no decoding happened.
  assert.throws(() => checkImage(bomb), /PNG image of 50000×50000: width above the limit of 10000/);
  await rejects(decodeImage(bomb, { size: 16 }), /50000×50000/, 'bomb');
  await rejects(decodeImage(bomb, { size: 16, maxWidth: 1e6, maxHeight: 1e6 }), /2500000000 pixels, above the limit of 25000000/, 'bomb pixels');
  // Limits are configurable.
  await rejects(decodeImage(png, { size: 16, maxPixels: 63 }), /64 pixels, above the limit of 63/, 'pixels');
  await rejects(decodeImage(png, { size: 16, maxBytes: 10 }), /above the limit of 10/, 'bytes');
  const gif = await twoTone(8, 8, 'gif');
  const gbomb = gif.slice();
  gbomb[6] = 0xff; gbomb[7] = 0xff; gbomb[8] = 0xff; gbomb[9] = 0xff;
  assert.throws(() => checkImage(gbomb), /GIF image of 65535×65535/);
  // A GIF whose first frame is larger than its logical screen is measured by the frame.
  const big = new Uint8Array(await sharp({ create: { width: 200, height: 120, channels: 3, background: '#f00' } }).gif().toBuffer());
  big[6] = 10; big[7] = 0; big[8] = 10; big[9] = 0;
  assert.deepEqual(readImageDimensions(big, 'gif'), { width: 200, height: 120 });
  await rejects(decodeImage(big, { size: 8, maxPixels: 1000 }), /GIF image of 200×120: 24000 pixels, above the limit of 1000/, 'gif frame');
  const jpeg = await twoTone(8, 8, 'jpeg');
  const jbomb = jpeg.slice();
  const sof = jbomb.findIndex((v, i) => v === 0xff && jbomb[i + 1] === 0xc0);
  jbomb[sof + 5] = 0xff; jbomb[sof + 6] = 0xf0; jbomb[sof + 7] = 0xff; jbomb[sof + 8] = 0xf0;
  assert.throws(() => checkImage(jbomb), /JPEG image of 65520×65520/);
});

test('corrupt, truncated, garbage and empty inputs give InputError', async () => {
  await rejects(decodeImage(new Uint8Array(0), { size: 8 }), /empty/, 'empty');
  await rejects(decodeImage(new TextEncoder().encode('hello, world'), { size: 8 }), /not a supported image.*68 65 6c 6c/, 'text');
  const rng = new Rng(7);
  const garbage = new Uint8Array(500).map(() => rng.int(256));
  await rejects(decodeImage(garbage, { size: 8 }), /not a supported image/, 'garbage');
  for (const format of ['png', 'jpeg', 'webp', 'gif'] as const) {
    const good = await twoTone(64, 64, format);
    await rejects(decodeImage(good.slice(0, 6), { size: 8 }), /./, `${format} 6 bytes`);
    await rejects(decodeImage(good.slice(0, 20), { size: 8 }), new RegExp(`${format.toUpperCase()}`), `${format} header only`);
    await rejects(decodeImage(good.slice(0, Math.floor(good.length * 0.6)), { size: 8 }), new RegExp(`${format.toUpperCase()} image of 64×64 could not be decoded`), `${format} truncated`);
  }
  // Bit rot in the middle of a PNG's compressed data (CRC mismatch).
  const png = await twoTone(64, 64, 'png');
  const rot = png.slice();
  for (let i = 60; i < 80; i++) rot[i]! ^= 0x5a;
  await rejects(decodeImage(rot, { size: 8 }), /PNG image of 64×64 could not be decoded/, 'corrupt png');
  // Random damage never crashes: every outcome is a decoded image or an InputError.
  for (let it = 0; it < 40; it++) {
    const b = png.slice();
    for (let k = 0; k < 3; k++) b[rng.int(b.length)]! ^= 1 << rng.int(8);
    try { await decodeImage(b, { size: 8 }); } catch (e) { assert.ok(e instanceof InputError, String(e)); }
  }
  await rejects(decodeImage(png, { size: 0 }), /output size/, 'size 0');
  await rejects(decodeImage(png, { size: 8, std: [1, 0, 1] }), /std must be 3 finite positive/, 'std');
});

test('files: decodeImageFile checks the size before reading', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-img-'));
  try {
    const p = join(dir, 'a.png');
    writeFileSync(p, await twoTone(20, 20, 'png'));
    const img = await decodeImageFile(p, { size: 10 });
    assert.equal(img.format, 'png');
    await rejects(decodeImageFile(p, { size: 10, maxBytes: 5 }), /a\.png: \d+ bytes, above the limit of 5/, 'too big');
    await rejects(decodeImageFile(join(dir, 'none.png'), { size: 10 }), /cannot read/, 'missing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('data URLs', async () => {
  const png = await twoTone(8, 8, 'png');
  const url = `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
  const { bytes, mime } = imageFromDataUrl(url);
  assert.equal(mime, 'image/png');
  assert.deepEqual(bytes, png);
  assert.equal((await decodeImage(bytes, { size: 4 })).format, 'png');
  assert.deepEqual((await decodeImageDataUrl(url, { size: 4 })).pixels, (await decodeImage(png, { size: 4 })).pixels);
  await rejects(decodeImageDataUrl('data:image/png;base64,aGVsbG8=', { size: 4 }), /not a supported image/, 'data url of text');
  assert.throws(() => imageFromDataUrl('https://example.com/cat.png'), /remote URLs are not supported, the server fetches nothing/);
  assert.throws(() => imageFromDataUrl('file:///etc/passwd'), /expected a data URL/);
  assert.throws(() => imageFromDataUrl('data:text/plain;base64,aGVsbG8='), /media type "text\/plain" is not a supported image type/);
  assert.throws(() => imageFromDataUrl('data:image/png,rawdata'), /only base64/);
  assert.throws(() => imageFromDataUrl('data:image/png;base64,@@@@'), /not valid base64/);
  assert.throws(() => imageFromDataUrl('data:image/png;base64,abc'), /not valid base64/);
  assert.throws(() => imageFromDataUrl('data:image/png;base64'), /missing the ','/);
  assert.throws(() => imageFromDataUrl(url, { maxBytes: 10 }), /above the limit of 10/);
});
