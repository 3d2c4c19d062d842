/**
 * `lumen tokenizer train|encode|decode`: train a byte-level BPE tokenizer, or encode / decode
 * with a trained one or a GPT-4-family encoding.
 *
 *   lumen tokenizer train --input 'data/**\/*.txt' --vocab-size 32000 --out runs/tok
 *   echo hello | lumen tokenizer encode --encoding cl100k_base          # [15339,198]
 *   echo '[15339,198]' | lumen tokenizer decode --encoding cl100k_base  # hello
 */
import { readFileSync } from 'node:fs';
import { parse, num } from '../args.ts';
import { InputError } from '../../util/errors.ts';
import { Tokenizer, trainBpe, TIKTOKEN_ENCODINGS, type TiktokenEncoding } from '../../tokenizer/index.ts';

const SUBCOMMANDS = 'train | encode | decode';

async function readInput(file: string | undefined): Promise<Buffer> {
  if (file !== undefined) {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new InputError(`--file ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function openTokenizer(dir: string | undefined, encoding: string | undefined): Tokenizer {
  if ((dir === undefined) === (encoding === undefined)) throw new InputError('expected exactly one of --tokenizer DIR or --encoding cl100k_base|o200k_base');
  if (encoding !== undefined) {
    if (!(TIKTOKEN_ENCODINGS as readonly string[]).includes(encoding)) throw new InputError(`--encoding: expected one of ${TIKTOKEN_ENCODINGS.join(', ')}, got '${encoding}'`);
    return Tokenizer.fromTiktoken(encoding as TiktokenEncoding);
  }
  return Tokenizer.load(dir!);
}

// Every option spells out `short` and `multiple`: src/cli/args.ts forwards them to parseArgs even when
// undefined, and Node 20's parseArgs rejects an undefined `short` / `multiple`.
const CODEC_OPTIONS = {
  tokenizer: { type: 'string', multiple: false, short: 't', help: 'directory holding tokenizer.json (or the .json file)' },
  encoding: { type: 'string', multiple: false, short: 'e', help: `built-in encoding: ${TIKTOKEN_ENCODINGS.join(' | ')}` },
  file: { type: 'string', multiple: false, short: 'f', help: 'read this file instead of stdin' },
} as const;

async function train(argv: string[]): Promise<number> {
  const p = parse('tokenizer train', '--input <glob>... --vocab-size N --out DIR', {
    input: { type: 'string', multiple: true, short: 'i', help: 'file or glob of training text (repeatable)' },
    'vocab-size': { type: 'string', multiple: false, short: 'n', help: 'total vocabulary: 256 bytes + merges + special tokens' },
    out: { type: 'string', multiple: false, short: 'o', help: 'output directory; DIR/tokenizer.json is written atomically' },
    pattern: { type: 'string', multiple: false, short: 'p', default: 'cl100k', help: 'pre-tokenisation: cl100k | o200k | a regex' },
  }, argv, 'Trains byte-level BPE on the inputs (streamed; deterministic merges). Special tokens take the last ids.');
  if (!p) return 0;
  const inputs = [...(p.values.input ?? []), ...p.positionals];
  if (inputs.length === 0) throw new InputError('--input: expected at least one file or glob');
  if (p.values['vocab-size'] === undefined) throw new InputError('--vocab-size: required');
  if (p.values.out === undefined) throw new InputError('--out: required');
  const vocabSize = num('vocab-size', p.values['vocab-size'], 0, { int: true, min: 1 });
  const t0 = performance.now();
  const tok = await trainBpe({ inputs, vocabSize, pattern: p.values.pattern, name: p.values.out });
  const path = tok.save(p.values.out);
  const s = tok.trainStats;
  console.error(`wrote ${path}: vocab ${tok.vocabSize} (${s.merges} merges), ${(s.bytes / 1e6).toFixed(1)} MB, ${s.uniqueWords} unique words, ${((performance.now() - t0) / 1000).toFixed(1)} s, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  return 0;
}

async function encode(argv: string[]): Promise<number> {
  const p = parse('tokenizer encode', '(--tokenizer DIR | --encoding NAME) [--file F]', {
    ...CODEC_OPTIONS,
    'allow-special': { type: 'boolean', multiple: false, short: 's', help: 'encode special-token text (e.g. <|endoftext|>) as special ids' },
  }, argv, 'Encodes a file or stdin (bytes, any encoding-valid or not) and prints one JSON array of ids.');
  if (!p) return 0;
  const tok = openTokenizer(p.values.tokenizer, p.values.encoding);
  const bytes = await readInput(p.values.file);
  let ids: number[];
  if (p.values['allow-special']) ids = tok.encode(new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes), { allowedSpecial: 'all' });
  else ids = tok.encodeBytes(bytes);
  process.stdout.write(JSON.stringify(ids) + '\n');
  return 0;
}

async function decode(argv: string[]): Promise<number> {
  const p = parse('tokenizer decode', '(--tokenizer DIR | --encoding NAME) [--file F]', CODEC_OPTIONS, argv,
    'Reads one JSON array of ids from a file or stdin and writes the decoded bytes to stdout.');
  if (!p) return 0;
  const tok = openTokenizer(p.values.tokenizer, p.values.encoding);
  const text = (await readInput(p.values.file)).toString('utf8');
  const where = p.values.file ?? 'stdin';
  let ids: unknown;
  try {
    ids = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${where}: expected one JSON array of token ids, got invalid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(ids)) throw new InputError(`${where}: expected a JSON array of token ids, got ${typeof ids}`);
  ids.forEach((x, i) => { if (!Number.isInteger(x)) throw new InputError(`${where}: element ${i} is ${JSON.stringify(x)}, expected an integer token id`); });
  const out = tok.decodeBytes(ids as number[]);
  await new Promise<void>((res, rej) => process.stdout.write(out, (e) => (e ? rej(e) : res())));
  return 0;
}

/** Entry point: dispatches to the subcommand. */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'train': return train(rest);
    case 'encode': return encode(rest);
    case 'decode': return decode(rest);
    case undefined: case '--help': case '-h':
      console.log(`Usage: lumen tokenizer <${SUBCOMMANDS}> [options]   (lumen tokenizer <sub> --help)`);
      return sub === undefined ? 2 : 0;
    default:
      throw new InputError(`unknown subcommand '${sub}'; expected ${SUBCOMMANDS}`);
  }
}
