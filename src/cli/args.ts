/**
 * Argument parsing shared by all commands: node's parseArgs in strict mode, with a uniform
 * error for unknown or malformed options and a `--help` text built from the option table.
 */
import { parseArgs } from 'node:util';
import { InputError } from '../util/errors.ts';

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  default?: string | boolean | string[];
  /** One line for --help. */
  help: string;
}

export type OptionTable = Record<string, OptionSpec>;

export function usage(command: string, synopsis: string, options: OptionTable, description = ''): string {
  const rows = Object.entries(options).map(([k, o]) => {
    const flag = `--${k}${o.type === 'string' ? ' <value>' : ''}${o.short ? `, -${o.short}` : ''}`;
    const def = o.default !== undefined && o.default !== false ? ` (default: ${JSON.stringify(o.default)})` : '';
    return `  ${flag.padEnd(30)} ${o.help}${def}`;
  });
  return [`Usage: lumen ${command} ${synopsis}`, description && `\n${description}`, '', 'Options:', ...rows, '  --help'.padEnd(32) + ' show this help'].filter((l) => l !== '').join('\n');
}

/** Parses argv; throws InputError naming the bad option. Returns null when --help was asked (help already printed). */
export function parse<T extends OptionTable>(command: string, synopsis: string, options: T, argv: string[], description = ''):
  { values: { [K in keyof T]: T[K]['type'] extends 'boolean' ? boolean : T[K]['multiple'] extends true ? string[] : string | undefined }; positionals: string[] } | null {
  const spec: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string; default?: string | boolean | string[] }> = {};
  for (const [k, o] of Object.entries(options)) {
    spec[k] = { type: o.type };
    if (o.multiple) spec[k].multiple = true;
    if (o.short) spec[k].short = o.short;
    if (o.default !== undefined) spec[k].default = o.default;
  }
  spec['help'] = { type: 'boolean' };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: spec, allowPositionals: true, strict: true });
  } catch (e) {
    throw new InputError(`${(e as Error).message}. Run 'lumen ${command} --help'.`);
  }
  if (parsed.values['help']) {
    console.log(usage(command, synopsis, options, description));
    return null;
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { values: parsed.values as any, positionals: parsed.positionals };
}

/** Parses a numeric option with bounds, naming the option in the error. */
export function num(name: string, v: string | undefined, def: number, opts: { min?: number; max?: number; int?: boolean } = {}): number {
  if (v === undefined) return def;
  const x = Number(v);
  if (!Number.isFinite(x) || (opts.int && !Number.isInteger(x))) throw new InputError(`--${name}: expected ${opts.int ? 'an integer' : 'a number'}, got '${v}'`);
  if (opts.min !== undefined && x < opts.min) throw new InputError(`--${name}: must be >= ${opts.min}, got ${x}`);
  if (opts.max !== undefined && x > opts.max) throw new InputError(`--${name}: must be <= ${opts.max}, got ${x}`);
  return x;
}
