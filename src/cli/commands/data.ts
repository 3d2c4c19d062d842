/** `lumen data prepare`: tokenize text files into binary shards with a validation split and a manifest. */
import { parse, num } from '../args.ts';
import { expandInputs, defaultCorpus } from '../../io/files.ts';
import { prepareShards } from '../../data/shards.ts';
import { Tokenizer } from '../../tokenizer/tokenizer.ts';
import { InputError } from '../../util/errors.ts';

const OPTIONS = {
  input: { type: 'string', multiple: true, help: 'files, directories or globs (repeatable); default: the embedded corpus under node_modules' },
  tokenizer: { type: 'string', help: 'tokenizer directory (tokenizer.json)' },
  out: { type: 'string', help: 'output directory for shards + manifest.json' },
  'val-percent': { type: 'string', help: 'percent of documents held out for validation', default: '2' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'prepare') {
    console.log('Usage: lumen data prepare --input <glob>... --tokenizer DIR --out DIR');
    return sub === undefined || sub === '--help' ? 0 : 2;
  }
  const p = parse('data prepare', '--input <glob>... --tokenizer DIR --out DIR', OPTIONS, rest);
  if (!p) return 0;
  const v = p.values;
  if (!v.tokenizer) throw new InputError('--tokenizer DIR is required');
  if (!v.out) throw new InputError('--out DIR is required');
  const files = v.input && v.input.length ? expandInputs(v.input) : defaultCorpus();
  const tok = Tokenizer.load(v.tokenizer);
  const m = prepareShards({ files, tokenizer: tok, outDir: v.out, valPercent: num('val-percent', v['val-percent'], 2, { min: 0, max: 50 }) });
  tok.save(v.out);
  console.log(`${m.sources.length} documents → ${m.train.tokens} train tokens in ${m.train.shards.length} shard(s), ${m.val.tokens} validation tokens (${m.dtype}) in ${v.out}`);
  return 0;
}
