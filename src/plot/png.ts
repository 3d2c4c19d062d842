/** SVG → PNG through sharp (librsvg), and writing a chart as both files atomically. */
import sharp from 'sharp';
import { InputError } from '../util/errors.ts';
import { writeFileAtomic } from '../util/fs.ts';

/** Rasterises SVG text to PNG. `scale` multiplies the SVG's pixel size (2 = sharp on high-DPI screens). */
export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  if (typeof svg !== 'string' || !/<svg[\s>]/.test(svg)) throw new InputError(`svgToPng: expected SVG text starting with an <svg> element, got ${JSON.stringify(String(svg).slice(0, 40))}`);
  if (!Number.isFinite(scale) || scale <= 0 || scale > 8) throw new InputError(`svgToPng: scale must be in (0, 8], got ${scale}`);
  return sharp(Buffer.from(svg, 'utf8'), { density: 72 * scale }).png({ compressionLevel: 9 }).toBuffer();
}

/** Writes `<path>.svg` and `<path>.png` (2x) atomically; returns both paths. */
export async function writeChart(pathWithoutExt: string, svg: string): Promise<{ svg: string; png: string }> {
  const png = await svgToPng(svg);
  const paths = { svg: `${pathWithoutExt}.svg`, png: `${pathWithoutExt}.png` };
  writeFileAtomic(paths.svg, svg);
  writeFileAtomic(paths.png, png);
  return paths;
}
