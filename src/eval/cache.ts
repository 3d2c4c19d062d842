/**
 * The on-disk response cache: one JSON file per request, named by the SHA-256 of the request's
 * canonical JSON (`<dir>/<first 2 hex>/<hash>.json`). Content-addressed, so a rerun of the same
 * evaluation finds every answer and sends nothing; entries are written atomically, so an
 * interrupted run leaves only whole entries behind.
 */
import { createHash } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/fs.ts';
import { canonicalJson } from '../util/json.ts';

/** A content-addressed store of request → response. */
export class ResponseCache {
  hits = 0;
  misses = 0;

  constructor(readonly dir: string) {}

  /** The hash naming a request. */
  key(request: unknown): string {
    return createHash('sha256').update(canonicalJson(request)).digest('hex');
  }

  private path(key: string): string {
    return join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  /** The cached response, or undefined. A corrupt entry counts as a miss. */
  get<T>(request: unknown): T | undefined {
    const p = this.path(this.key(request));
    if (!existsSync(p)) { this.misses++; return undefined; }
    try {
      const v = JSON.parse(readFileSync(p, 'utf8')) as { response: T };
      this.hits++;
      return v.response;
    } catch {
      this.misses++;
      return undefined;
    }
  }

  /** Stores a response (atomically) next to its request; requests over 16 kB (images) are kept as their size only. */
  set(request: unknown, response: unknown): void {
    const json = canonicalJson(request);
    const key = createHash('sha256').update(json).digest('hex');
    writeJsonAtomic(this.path(key), { request: json.length > 16_384 ? { omitted_bytes: json.length } : request, response });
  }
}
