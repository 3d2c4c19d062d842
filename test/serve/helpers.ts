/** Shared helpers of the server tests: a server on a random loopback port, images, SSE reading. */
import sharp from 'sharp';
import { createServer, type LumenServer, type ServerOptions } from '../../src/serve/server.ts';
import { FakeModel, type FakeModelOptions } from './fake-model.ts';

export interface TestServer { server: LumenServer; url: string; model: FakeModel }

/** Starts a server over a fake model on 127.0.0.1 with a random port. */
export async function startServer(opts: Partial<ServerOptions> = {}, modelOpts: FakeModelOptions = {}): Promise<TestServer> {
  const model = new FakeModel(modelOpts);
  const server = createServer({ model, log: () => {}, ...opts });
  const url = await server.listen(0, '127.0.0.1');
  return { server, url, model };
}

/** A small PNG of a solid colour with a diagonal, as a data URL. */
export async function pngDataUrl(r: number, g: number, b: number, size = 24): Promise<string> {
  const raw = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    const o = (y * size + x) * 3;
    const d = x === y ? 255 : 0;
    raw[o] = r ^ d; raw[o + 1] = g; raw[o + 2] = b;
  }
  const png = await sharp(raw, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** POSTs JSON and returns status and parsed body (or text when not JSON). */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  try { return { status: res.status, body: JSON.parse(text) }; } catch { return { status: res.status, body: text }; }
}

/** Parses an SSE body into its data payloads (JSON, or the string '[DONE]'). */
export function sseEvents(text: string): unknown[] {
  return text.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => {
    const d = b.slice(6);
    return d === '[DONE]' ? d : JSON.parse(d);
  });
}

/** Reads a metric value from Prometheus text. */
export function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line ? Number(line.split(' ').pop()) : NaN;
}
