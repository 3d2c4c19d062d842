/**
 * JSON Lines: one JSON value per line. Reading skips blank lines, accepts CRLF line ends and a
 * leading byte-order mark, and reports a syntax error with the file and the 1-based line.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../util/errors.ts';

/** A parsed line: its 1-based line number and value. */
export interface JsonlLine { line: number; value: unknown }

/** Parses JSONL text; `source` (usually the file path) names the input in errors. */
export function parseJsonl(text: string, source: string): JsonlLine[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const out: JsonlLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
    if (raw.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new InputError(`${source}:${i + 1}: not valid JSON (${(e as Error).message}); line starts ${JSON.stringify(raw.slice(0, 60))}`);
    }
    out.push({ line: i + 1, value });
  }
  return out;
}

/** Reads and parses a JSONL file. */
export function readJsonl(path: string): JsonlLine[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(`${path}: cannot read file (${(e as Error).message})`);
  }
  return parseJsonl(text, path);
}

/** Serialises values as JSONL (one compact JSON value per line, trailing newline). */
export function toJsonl(values: readonly unknown[]): string {
  return values.map((v) => JSON.stringify(v)).join('\n') + (values.length ? '\n' : '');
}
