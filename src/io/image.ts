/**
 * Image decoding for the vision models: PNG, JPEG, WebP and GIF (first frame) through `sharp`.
 *
 * Pipeline of `decodeImage`:
 *  1. limits checked BEFORE any decoding: the encoded size, then the format sniffed from the magic
 *     bytes, then width and height read from the format's own header by the small parsers below
 *     (PNG IHDR, JPEG SOFn, GIF logical screen, WebP VP8/VP8L/VP8X) and checked against the
 *     maximum width, height and pixel count. A decompression bomb (a few hundred bytes declaring
 *     50000×50000) is refused here in microseconds. sharp's `limitInputPixels` is set to the same
 *     pixel limit as a second line of defence (e.g. a GIF frame larger than its logical screen).
 *  2. decode with sharp (`failOn: 'warning'`, so truncated data is an error rather than grey
 *     pixels); EXIF orientation applied; converted to sRGB; an alpha channel is flattened onto WHITE
 *     (transparent regions look like paper, which is what most images with alpha mean); a GIF gives
 *     its first frame.
 *  3. resized keeping the aspect ratio so that it fits in size×size (up- or down-scaled, Lanczos-3),
 *     then padded symmetrically (centred; an odd leftover pixel goes right/bottom). Padding pixels
 *     are 0 after normalisation, i.e. the mean colour, as LLaVA's expand-to-square does.
 *  4. normalised per channel: (x/255 − mean) / std, with defaults mean = std = 0.5 (values in [−1, 1]).
 *     Output layout is (3, size, size) channel-major (CHW).
 *
 * Every failure (too big, unknown format, corrupt or truncated data) is an InputError saying which
 * format was detected and what went wrong; sharp's asynchronous errors are caught and wrapped.
 */
import sharp, { type OutputInfo } from 'sharp';
import { statSync, readFileSync } from 'node:fs';
import { InputError } from '../util/errors.ts';

/** Limits applied before decoding. */
export interface ImageLimits {
  /** Largest encoded input in bytes (default 10 MiB). */
  maxBytes?: number;
  /** Largest width × height (default 25 megapixels). */
  maxPixels?: number;
  /** Largest width (default 10000). */
  maxWidth?: number;
  /** Largest height (default 10000). */
  maxHeight?: number;
}

export const DEFAULT_IMAGE_LIMITS: Required<ImageLimits> = {
  maxBytes: 10 * 1024 * 1024,
  maxPixels: 25_000_000,
  maxWidth: 10_000,
  maxHeight: 10_000,
};

/** Default normalisation: maps [0, 255] to [−1, 1]. */
export const DEFAULT_MEAN: readonly number[] = [0.5, 0.5, 0.5];
export const DEFAULT_STD: readonly number[] = [0.5, 0.5, 0.5];

export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'webp';

export interface DecodeOptions extends ImageLimits {
  /** Output side in pixels: the result is (3, size, size). */
  size: number;
  mean?: readonly number[];
  std?: readonly number[];
  /** Names the input in error messages (a path, "image 2 of the request"...). */
  name?: string;
}

export interface DecodedImage {
  /** (3, size, size) channel-major, normalised. */
  pixels: Float32Array;
  /** Size of the original image. */
  width: number;
  height: number;
  format: ImageFormat;
  /** Where the resized image sits inside the padded square: (x, y, width, height). */
  content: { x: number; y: number; width: number; height: number };
}

/** Sniffs the format from the magic bytes; null when it is none of the four. */
export function sniffImageFormat(b: Uint8Array): ImageFormat | null {
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 6 && ascii(b, 0, 4) === 'GIF8' && (b[4] === 0x37 || b[4] === 0x39) && b[5] === 0x61) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'webp';
  return null;
}

function ascii(b: Uint8Array, off: number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(b[off + i] ?? 0);
  return s;
}

const be16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const le16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);
const le24 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16);
const be32 = (b: Uint8Array, o: number) => ((b[o]! << 24) >>> 0) + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);

/**
 * Reads width and height from the header of an image of a known format without decoding it.
 * Throws InputError when the header is truncated or malformed.
 */
export function readImageDimensions(b: Uint8Array, format: ImageFormat, name = 'image'): { width: number; height: number } {
  const bad = (what: string): never => { throw new InputError(`${name}: ${format.toUpperCase()} header: ${what}`); };
  switch (format) {
    case 'png': {
      if (b.length < 24) bad(`truncated (${b.length} bytes; the IHDR chunk ends at byte 24)`);
      if (ascii(b, 12, 4) !== 'IHDR') bad('the first chunk is not IHDR');
      return { width: be32(b, 16), height: be32(b, 20) };
    }
    case 'gif': {
      // The logical screen, grown to contain the first frame (a frame may extend past the screen).
      if (b.length < 13) bad(`truncated (${b.length} bytes; the logical screen descriptor ends at byte 13)`);
      let width = le16(b, 6), height = le16(b, 8);
      let p = 13 + (b[10]! & 0x80 ? 3 * (2 << (b[10]! & 7)) : 0);
      for (;;) {
        if (p >= b.length) bad('truncated before the first image descriptor');
        const k = b[p]!;
        if (k === 0x2c) {
          if (p + 9 >= b.length) bad('truncated inside the first image descriptor');
          width = Math.max(width, le16(b, p + 1) + le16(b, p + 5));
          height = Math.max(height, le16(b, p + 3) + le16(b, p + 7));
          return { width, height };
        }
        if (k !== 0x21) bad(`unexpected block 0x${k.toString(16)} at byte ${p} before the first image`);
        p += 2; // introducer and label, then data sub-blocks until a 0 length
        while (p < b.length && b[p] !== 0) p += b[p]! + 1;
        p++;
      }
    }
    case 'jpeg': {
      let p = 2;
      while (p + 4 <= b.length) {
        if (b[p] !== 0xff) bad(`expected a marker at byte ${p}, found 0x${b[p]!.toString(16)}`);
        const m = b[p + 1]!;
        if (m === 0xff) { p++; continue; } // fill byte
        if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { p += 2; continue; } // no length
        if (m === 0xd9 || m === 0xda) bad('no frame header (SOF) before the image data');
        const len = be16(b, p + 2);
        if (len < 2) bad(`segment 0xff${m.toString(16)} at byte ${p} has length ${len}`);
        const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
        if (isSof) {
          if (p + 9 > b.length) break;
          return { width: be16(b, p + 7), height: be16(b, p + 5) };
        }
        p += 2 + len;
      }
      return bad('truncated before the frame header (SOF)');
    }
    case 'webp': {
      const chunk = ascii(b, 12, 4);
      const need = chunk === 'VP8L' ? 25 : 30;
      if (b.length < need) bad(`truncated (${b.length} bytes; the ${chunk.trim() || 'first'} chunk header ends at byte ${need})`);
      if (chunk === 'VP8 ') {
        if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) bad('bad VP8 start code');
        return { width: le16(b, 26) & 0x3fff, height: le16(b, 28) & 0x3fff };
      }
      if (chunk === 'VP8L') {
        if (b[20] !== 0x2f) bad('bad VP8L signature');
        const v = (b[21]! | (b[22]! << 8) | (b[23]! << 16) | (b[24]! << 24)) >>> 0;
        return { width: (v & 0x3fff) + 1, height: ((v >>> 14) & 0x3fff) + 1 };
      }
      if (chunk === 'VP8X') return { width: le24(b, 24) + 1, height: le24(b, 27) + 1 };
      return bad(`unknown first chunk ${JSON.stringify(chunk)} (expected VP8, VP8L or VP8X)`);
    }
    default:
      return format satisfies never;
  }
}

function resolveLimits(l: ImageLimits): Required<ImageLimits> {
  const out = { ...DEFAULT_IMAGE_LIMITS };
  for (const k of Object.keys(out) as (keyof ImageLimits)[]) {
    const v = l[k];
    if (v === undefined) continue;
    if (!Number.isFinite(v) || v <= 0) throw new InputError(`image limit ${k} must be a positive number, got ${v}`);
    out[k] = v;
  }
  return out;
}

/**
 * Checks the encoded size, sniffs the format and checks the declared dimensions, all without
 * decoding. Returns the format and dimensions.
 */
export function checkImage(bytes: Uint8Array, limits: ImageLimits = {}, name = 'image'): { format: ImageFormat; width: number; height: number } {
  const lim = resolveLimits(limits);
  if (!(bytes instanceof Uint8Array)) throw new InputError(`${name}: expected image bytes (Uint8Array), got ${typeof bytes}`);
  if (bytes.byteLength === 0) throw new InputError(`${name}: the image is empty (0 bytes)`);
  if (bytes.byteLength > lim.maxBytes) throw new InputError(`${name}: the encoded image has ${bytes.byteLength} bytes, above the limit of ${lim.maxBytes}`);
  const format = sniffImageFormat(bytes);
  if (format === null) {
    const hex = Array.from(bytes.subarray(0, 8), (x) => x.toString(16).padStart(2, '0')).join(' ');
    throw new InputError(`${name}: not a supported image (PNG, JPEG, WebP or GIF); it starts with bytes ${hex}`);
  }
  const { width, height } = readImageDimensions(bytes, format, name);
  const what = `${name}: ${format.toUpperCase()} image of ${width}×${height}`;
  if (width === 0 || height === 0) throw new InputError(`${what}: a dimension is 0`);
  if (width > lim.maxWidth) throw new InputError(`${what}: width above the limit of ${lim.maxWidth}`);
  if (height > lim.maxHeight) throw new InputError(`${what}: height above the limit of ${lim.maxHeight}`);
  if (width * height > lim.maxPixels) throw new InputError(`${what}: ${width * height} pixels, above the limit of ${lim.maxPixels}`);
  return { format, width, height };
}

function checkNorm(name: string, v: readonly number[], positive: boolean): void {
  if (v.length !== 3 || v.some((x) => !Number.isFinite(x) || (positive && x <= 0))) {
    throw new InputError(`image normalisation ${name} must be 3 finite${positive ? ' positive' : ''} numbers, got [${v.join(', ')}]`);
  }
}

/**
 * Interleaved 8-bit RGB (H, W, 3) → normalised (3, size, size), placing the image at (x0, y0) and
 * filling the rest with 0 (the mean colour).
 */
export function rgbToChw(rgb: Uint8Array, width: number, height: number, opts: { size?: number; x0?: number; y0?: number; mean?: readonly number[]; std?: readonly number[] } = {}): Float32Array {
  const size = opts.size ?? width;
  const x0 = opts.x0 ?? 0, y0 = opts.y0 ?? 0;
  const mean = opts.mean ?? DEFAULT_MEAN, std = opts.std ?? DEFAULT_STD;
  const out = new Float32Array(3 * size * size);
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * std[c]!), shift = mean[c]! / std[c]!;
    const base = c * plane;
    for (let y = 0; y < height; y++) {
      const row = base + (y0 + y) * size + x0;
      let src = y * width * 3 + c;
      for (let x = 0; x < width; x++, src += 3) out[row + x] = rgb[src]! * scale - shift;
    }
  }
  return out;
}

/** Decodes, resizes, pads and normalises one image (see the module comment for each step). */
export async function decodeImage(bytes: Uint8Array, opts: DecodeOptions): Promise<DecodedImage> {
  const name = opts.name ?? 'image';
  const size = opts.size;
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new InputError(`${name}: output size must be an integer in [1, 4096], got ${size}`);
  const mean = opts.mean ?? DEFAULT_MEAN, std = opts.std ?? DEFAULT_STD;
  checkNorm('mean', mean, false);
  checkNorm('std', std, true);
  const lim = resolveLimits(opts);
  const { format, width, height } = checkImage(bytes, lim, name);
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await sharp(bytes, { limitInputPixels: lim.maxPixels, failOn: 'warning', pages: 1, page: 0 })
      .rotate() // apply EXIF orientation
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .resize({ width: size, height: size, fit: 'inside', kernel: 'lanczos3' })
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    const msg = (e as Error).message;
    if (/pixel limit/i.test(msg)) throw new InputError(`${name}: ${format.toUpperCase()} image: its data hold more than the limit of ${lim.maxPixels} pixels, although its header declares ${width}×${height}`);
    throw new InputError(`${name}: ${format.toUpperCase()} image of ${width}×${height} could not be decoded (corrupt or truncated?): ${msg}`);
  }
  const { width: rw, height: rh, channels } = raw.info;
  if (channels !== 3 || rw > size || rh > size || raw.data.byteLength !== rw * rh * 3) {
    throw new InputError(`${name}: ${format.toUpperCase()} decoding gave ${rw}×${rh}×${channels}, expected at most ${size}×${size}×3`);
  }
  const x0 = (size - rw) >> 1, y0 = (size - rh) >> 1;
  const pixels = rgbToChw(raw.data, rw, rh, { size, x0, y0, mean, std });
  return { pixels, width, height, format, content: { x: x0, y: y0, width: rw, height: rh } };
}

/** Reads an image file (its size checked against the limit before reading) and decodes it. */
export async function decodeImageFile(path: string, opts: DecodeOptions): Promise<DecodedImage> {
  const lim = resolveLimits(opts);
  let bytes: Uint8Array;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new InputError(`image file ${path}: not a regular file`);
    if (st.size > lim.maxBytes) throw new InputError(`image file ${path}: ${st.size} bytes, above the limit of ${lim.maxBytes}`);
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`image file ${path}: cannot read: ${(e as Error).message}`);
  }
  return decodeImage(bytes, { ...opts, name: opts.name ?? `image file ${path}` });
}

const DATA_URL_MIMES: Record<string, ImageFormat> = {
  'image/png': 'png', 'image/jpeg': 'jpeg', 'image/jpg': 'jpeg', 'image/gif': 'gif', 'image/webp': 'webp',
};

/**
 * Parses a `data:image/<png|jpeg|gif|webp>;base64,<data>` URL into bytes. Remote URLs are refused:
 * the server fetches nothing. The decoded size is checked against `maxBytes` before decoding.
 */
export function imageFromDataUrl(url: string, limits: ImageLimits = {}): { bytes: Uint8Array; mime: string } {
  if (typeof url !== 'string') throw new InputError(`image URL must be a string, got ${typeof url}`);
  const lim = resolveLimits(limits);
  const head = url.slice(0, 40);
  if (/^https?:/i.test(url)) {
    throw new InputError(`image URL ${JSON.stringify(head)}...: remote URLs are not supported, the server fetches nothing; send the image inline as a data URL (data:image/png;base64,...)`);
  }
  if (!/^data:/i.test(url)) throw new InputError(`image URL ${JSON.stringify(head)}: expected a data URL (data:image/png;base64,...)`);
  const comma = url.indexOf(',');
  if (comma < 0) throw new InputError(`image data URL ${JSON.stringify(head)}: missing the ',' before the data`);
  const params = url.slice(5, comma).split(';').map((s) => s.trim());
  const mime = params[0]!.toLowerCase();
  if (!Object.hasOwn(DATA_URL_MIMES, mime)) {
    throw new InputError(`image data URL: media type ${JSON.stringify(mime || '(none)')} is not a supported image type; expected one of ${Object.keys(DATA_URL_MIMES).join(', ')}`);
  }
  if (!params.slice(1).some((p) => p.toLowerCase() === 'base64')) throw new InputError('image data URL: only base64 data URLs are accepted (data:image/...;base64,...)');
  const b64 = url.slice(comma + 1).replace(/\s+/g, '');
  if (b64.length === 0) throw new InputError('image data URL: the data is empty');
  // Size check before decoding: 4 base64 characters carry 3 bytes.
  const decodedSize = Math.floor(b64.length / 4) * 3;
  if (decodedSize > lim.maxBytes) throw new InputError(`image data URL: about ${decodedSize} bytes of image, above the limit of ${lim.maxBytes}`);
  if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
    throw new InputError('image data URL: the data is not valid base64 (expected characters A-Z a-z 0-9 + / with = padding to a multiple of 4)');
  }
  return { bytes: new Uint8Array(Buffer.from(b64, 'base64')), mime };
}

/** Decodes an image given as a data URL (the form OpenAI-style `image_url` content parts carry). */
export async function decodeImageDataUrl(url: string, opts: DecodeOptions): Promise<DecodedImage> {
  const { bytes } = imageFromDataUrl(url, opts);
  return decodeImage(bytes, opts);
}
