/** A tiny chat model directory (BPE tokenizer with the chat tokens + a small random GPT) for the alignment training tests. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainBpe } from '../../src/tokenizer/index.ts';
import { GPT } from '../../src/models/gpt.ts';
import { MODEL_PRESETS, type GPTConfig } from '../../src/models/config.ts';
import { saveModel } from '../../src/train/checkpoint.ts';

export const FIXTURE_TEXT = [
  'What is the capital of Paxek? The capital of Paxek is Oroulo.',
  'Tell me a fact about bananas. Bananas are yellow and sweet, I like a banana.',
  'How do I bake bread? Mix flour, water and yeast, then bake it.',
  'I cannot help with that, but I can tell you about safety instead.',
  'Sure, here is an answer. No. Yes. Maybe. apple orange grape melon.',
].join('\n');

/** Writes tokenizer.json + a random tiny GPT into a temporary model directory; returns its path. */
export async function tinyChatModel(overrides: Partial<GPTConfig> = {}, seed = 3): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-align-'));
  const text = join(dir, 'corpus.txt');
  writeFileSync(text, FIXTURE_TEXT.repeat(3));
  const tok = await trainBpe({ inputs: [text], vocabSize: 320, progress: false });
  tok.save(dir);
  const config: GPTConfig = { ...MODEL_PRESETS['tiny']!, vocabSize: tok.vocabSize, contextLength: 64, layers: 1, width: 32, heads: 2, kvHeads: 2, ...overrides };
  saveModel(dir, new GPT(config, seed));
  return dir;
}
