/**
 * SVG → RGB pixels with sharp (librsvg), and the shape primitives the scenes are drawn with.
 */
import sharp from 'sharp';
import { InputError, LumenError } from '../../util/errors.ts';
import { f2, type Shape } from './scene.ts';

/**
 * Renders an SVG document made by `svgDoc` (100×100 user units) at size×size pixels.
 * Returns interleaved RGB bytes (size, size, 3).
 */
export async function renderSvg(svg: string, size: number): Promise<Uint8Array> {
  checkSize(size);
  return rasterise(svg.replace('width="100" height="100"', `width="${size}" height="${size}"`), size, size, 'renderSvg');
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 8 || size > 1024) throw new InputError(`visual image size must be an integer in [8, 1024], got ${size}`);
}

/** An SVG document of W×H pixels → interleaved RGB bytes on white; `who` names the caller in errors. */
async function rasterise(doc: string, W: number, H: number, who: string): Promise<Uint8Array> {
  const { data, info } = await sharp(Buffer.from(doc), { density: 72, limitInputPixels: false })
    .flatten({ background: '#ffffff' })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== W || info.height !== H || info.channels !== 3) {
    throw new LumenError(`${who}: expected ${W}×${H}×3, sharp gave ${info.width}×${info.height}×${info.channels}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Tiles per row of a `renderSvgs` sheet. */
const SHEET_COLUMNS = 16;
const DOC_OPEN = /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 100 100" width="100" height="100">/;

/**
 * Renders many `svgDoc` documents at size×size pixels with one sharp call: each becomes a nested
 * <svg> tile (its own 100-unit viewBox, clipped to the tile) at a whole-pixel offset of one sheet,
 * which is cut back into images. The pixels are identical to `renderSvg` one at a time (a test
 * checks every task); a call costs about a fifth of the CPU time, since librsvg's and libvips'
 * per-document setup dominates at these sizes. Returns one (size, size, 3) RGB array per document.
 */
export async function renderSvgs(svgs: readonly string[], size: number): Promise<Uint8Array[]> {
  checkSize(size);
  if (svgs.length === 0) return [];
  const cols = Math.min(SHEET_COLUMNS, svgs.length), rows = Math.ceil(svgs.length / cols);
  const W = cols * size, H = rows * size;
  const tiles = svgs.map((svg, k) => {
    const open = DOC_OPEN.exec(svg);
    if (!open || !svg.endsWith('</svg>')) throw new LumenError(`renderSvgs: document ${k} is not an svgDoc document (100×100 user units)`);
    const body = svg.slice(open[0].length, svg.length - '</svg>'.length);
    return `<svg x="${(k % cols) * size}" y="${Math.floor(k / cols) * size}" width="${size}" height="${size}" viewBox="0 0 100 100">${body}</svg>`;
  });
  const doc = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">${tiles.join('')}</svg>`;
  const data = await rasterise(doc, W, H, 'renderSvgs');
  const row = size * 3;
  return svgs.map((_, k) => {
    const out = new Uint8Array(size * row);
    const x0 = (k % cols) * size, y0 = Math.floor(k / cols) * size;
    for (let y = 0; y < size; y++) {
      const from = ((y0 + y) * W + x0) * 3;
      out.set(data.subarray(from, from + row), y * row);
    }
    return out;
  });
}

/** Encodes (size, size, 3) RGB bytes as PNG (to look at samples or save them). */
export async function rgbToPng(rgb: Uint8Array, size: number): Promise<Uint8Array> {
  return new Uint8Array(await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer());
}

/** Runs `fn` over `items` with at most `concurrency` promises in flight, keeping the order. */
export async function mapLimit<T, R>(items: readonly T[], concurrency: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return out;
}

/**
 * SVG element of a shape centred at (cx, cy) with "radius" r: a circle of radius r, a square of
 * side 1.8r, an upward equilateral triangle whose centroid is (cx, cy) and circumradius 1.25r
 * (areas within 15% of each other, so size does not give the shape away).
 */
export function shapeSvg(shape: Shape, cx: number, cy: number, r: number, fill: string): string {
  switch (shape) {
    case 'circle':
      return `<circle cx="${f2(cx)}" cy="${f2(cy)}" r="${f2(r)}" fill="${fill}"/>`;
    case 'square': {
      const h = 0.9 * r;
      return `<rect x="${f2(cx - h)}" y="${f2(cy - h)}" width="${f2(2 * h)}" height="${f2(2 * h)}" fill="${fill}"/>`;
    }
    case 'triangle': {
      const R = 1.25 * r, dx = R * Math.sqrt(3) / 2;
      return `<polygon points="${f2(cx)},${f2(cy - R)} ${f2(cx + dx)},${f2(cy + R / 2)} ${f2(cx - dx)},${f2(cy + R / 2)}" fill="${fill}"/>`;
    }
    default:
      return shape satisfies never;
  }
}
