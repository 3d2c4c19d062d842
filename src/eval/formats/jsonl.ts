/** JSON Lines reading with line numbers in every error. */
import { InputError } from '../../util/errors.ts';

/** One parsed JSONL row and its 1-based line. */
export interface JsonlRow {
  line: number;
  value: Record<string, unknown>;
}

/** Parses JSONL text: one JSON object per non-blank line. */
export function parseJsonl(text: string, file: string): JsonlRow[] {
  const rows: JsonlRow[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new InputError(`${file}:${i + 1}: invalid JSON (${(e as Error).message})`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InputError(`${file}:${i + 1}: expected a JSON object, got ${Array.isArray(v) ? 'an array' : JSON.stringify(v)}`);
    rows.push({ line: i + 1, value: v as Record<string, unknown> });
  }
  return rows;
}

/** A reader of typed fields of one row whose errors name file, line and field. */
export class RowReader {
  constructor(private readonly file: string, private readonly row: JsonlRow) {}

  private where(field: string): string {
    return `${this.file}:${this.row.line}: field '${field}'`;
  }

  /** The raw value at a dotted path (`question.stem`), or undefined. */
  get(path: string): unknown {
    let v: unknown = this.row.value;
    for (const k of path.split('.')) {
      if (v === null || typeof v !== 'object') return undefined;
      v = (v as Record<string, unknown>)[k];
    }
    return v;
  }

  /** A required string (numbers are accepted and converted). */
  string(path: string): string {
    const v = this.get(path);
    if (typeof v === 'string') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    throw new InputError(`${this.where(path)}: expected a string, got ${v === undefined ? 'nothing (missing)' : JSON.stringify(v)}`);
  }

  /** A required array of strings. */
  strings(path: string): string[] {
    const v = this.get(path);
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string'))
      throw new InputError(`${this.where(path)}: expected a non-empty array of strings, got ${v === undefined ? 'nothing (missing)' : JSON.stringify(v).slice(0, 80)}`);
    return v as string[];
  }

  /** A required integer (strings holding an integer are accepted). */
  int(path: string): number {
    const v = this.get(path);
    const x = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
    if (typeof x !== 'number' || !Number.isInteger(x)) throw new InputError(`${this.where(path)}: expected an integer, got ${v === undefined ? 'nothing (missing)' : JSON.stringify(v)}`);
    return x;
  }

  /** Throws an error about this row. */
  fail(message: string): never {
    throw new InputError(`${this.file}:${this.row.line}: ${message}`);
  }
}
