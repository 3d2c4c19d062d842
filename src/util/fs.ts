/**
 * Atomic file writes: write to a temporary file in the same directory, fsync it, rename it
 * over the destination, fsync the directory. A crash at any moment leaves either the old
 * file or the new one, never a partial file. (writeFileReplacing: the same without the
 * fsyncs, for caches.)
 */
import { openSync, writeSync, fsyncSync, closeSync, renameSync, unlinkSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Writes `data` to `path` atomically (creating parent directories). */
export function writeFileAtomic(path: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  writeReplacing(path, data, true);
}

/**
 * Replaces `path` whole by a rename, like writeFileAtomic, but without flushing to disk: for
 * caches, where a file that a power loss damaged is detected and made again. Readers never see
 * a partial write of this process.
 */
export function writeFileReplacing(path: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  writeReplacing(path, data, false);
}

function writeReplacing(path: string, data: string | Uint8Array | readonly Uint8Array[], durable: boolean): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    const parts = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
    for (const part of parts) {
      let off = 0;
      while (off < part.byteLength) off += writeSync(fd, part, off, part.byteLength - off);
    }
    if (durable) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
  closeSync(fd);
  crashPoint(path);
  renameSync(tmp, path);
  if (durable) fsyncDir(dir);
}

/** fsync a directory so a rename in it is durable (no-op where the platform refuses). */
export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
  } catch { /* some filesystems do not allow fsync on directories */ }
}

/** Writes JSON (pretty, trailing newline) atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

export function ensureDir(dir: string): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
}

/**
 * Fault injection for tests: when LUMEN_CRASH_BEFORE_RENAME names this file (basename) and the
 * countdown in LUMEN_CRASH_COUNTDOWN (default 1) reaches zero, the process kills itself with
 * SIGKILL after the temporary file is complete but before it replaces the old one — the worst
 * moment for a crash. Unset in normal use.
 */
let crashCountdown: number | null = null;
function crashPoint(path: string): void {
  const target = process.env.LUMEN_CRASH_BEFORE_RENAME;
  if (!target || basename(path) !== target) return;
  crashCountdown ??= Number(process.env.LUMEN_CRASH_COUNTDOWN ?? 1);
  if (--crashCountdown <= 0) process.kill(process.pid, 'SIGKILL');
}
