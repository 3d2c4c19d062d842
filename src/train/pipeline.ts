/**
 * The data side of a training run: corpus → tokenizer → token shards, cached under runs/data/
 * so a second run reuses them. With no inputs the embedded default corpus is used.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { trainBpe } from '../tokenizer/train.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { expandInputs, defaultCorpus } from '../io/files.ts';
import { prepareShards, readManifest } from '../data/shards.ts';
import { ensureDir } from '../util/fs.ts';

export interface DataPlan {
  dataDir: string;
  tokenizerJson: string;
  vocabSize: number;
}

export interface EnsureDataOptions {
  /** Files or globs; the embedded default corpus when empty. */
  inputs?: string[];
  /** Tokenizer directory to use instead of training one. */
  tokenizerDir?: string;
  vocabSize: number;
  root?: string;
  quiet?: boolean;
}

/** Returns token shards (and their tokenizer) for the inputs, building them if needed. */
export async function ensureData(o: EnsureDataOptions): Promise<DataPlan> {
  const files = o.inputs && o.inputs.length ? expandInputs(o.inputs) : defaultCorpus();
  const key = createHash('sha256').update(JSON.stringify({ files, vocab: o.vocabSize, tok: o.tokenizerDir ?? null })).digest('hex').slice(0, 12);
  const dataDir = join(o.root ?? 'runs', 'data', `${o.inputs?.length ? 'custom' : 'default'}-${o.vocabSize}-${key}`);
  const tokJson = join(dataDir, 'tokenizer.json');
  if (existsSync(join(dataDir, 'manifest.json')) && existsSync(tokJson)) {
    readManifest(dataDir); // validates
    return { dataDir, tokenizerJson: tokJson, vocabSize: Tokenizer.load(dataDir).vocabSize };
  }
  ensureDir(dataDir);
  let tok: Tokenizer;
  if (o.tokenizerDir) {
    tok = Tokenizer.load(o.tokenizerDir);
    tok.save(dataDir);
  } else {
    if (!o.quiet) console.error(`lumen: training a ${o.vocabSize}-token BPE tokenizer on ${files.length} files`);
    tok = await trainBpe({ inputs: files, vocabSize: o.vocabSize, progress: !o.quiet, name: `lumen-${o.vocabSize}` });
    tok.save(dataDir);
  }
  prepareShards({ files, tokenizer: tok, outDir: dataDir, quiet: o.quiet });
  return { dataDir, tokenizerJson: tokJson, vocabSize: tok.vocabSize };
}

export function tokenizerVocab(dir: string): number {
  return (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { vocabSize: number }).vocabSize;
}
