/** `lumen sample`: stream a continuation of a prompt from a trained model (KV cache). */
import { parse, num } from '../args.ts';
import { loadModel } from '../../train/checkpoint.ts';
import { Decoder } from '../../models/decoder.ts';
import { sampleToken } from '../../models/sampling.ts';
import { Rng } from '../../tensor/rng.ts';
import { Tokenizer } from '../../tokenizer/tokenizer.ts';
import { InputError } from '../../util/errors.ts';

const OPTIONS = {
  model: { type: 'string', help: 'model directory (config.json, model.safetensors, tokenizer.json)' },
  prompt: { type: 'string', help: 'text to continue', default: '' },
  'max-tokens': { type: 'string', help: 'tokens to generate', default: '200' },
  temperature: { type: 'string', help: 'sampling temperature (0 = greedy)', default: '0.8' },
  'top-k': { type: 'string', help: 'keep the k most likely tokens (0 = all)', default: '0' },
  'top-p': { type: 'string', help: 'nucleus sampling threshold', default: '1' },
  seed: { type: 'string', help: 'random seed', default: '0' },
  stop: { type: 'string', multiple: true, help: 'stop when this text appears (repeatable)' },
} as const;

export interface SampleArgs {
  modelDir: string; prompt: string; maxTokens: number; temperature: number; topK: number; topP: number; seed: number; stop: string[];
  write?: (s: string) => void;
}

/** Generates and streams text; returns the generated text. */
export function generateText(a: SampleArgs): string {
  const model = loadModel(a.modelDir);
  const tok = Tokenizer.load(a.modelDir);
  const dec = new Decoder(model);
  const cache = dec.newCache();
  const eot = tok.specialTokenId('<|endoftext|>');
  let ids = tok.encode(a.prompt);
  if (ids.length === 0) ids = [eot];
  const room = model.config.contextLength - ids.length;
  if (room <= 0) throw new InputError(`the prompt is ${ids.length} tokens; the model's context is ${model.config.contextLength}`);
  const rng = new Rng(a.seed);
  const out: number[] = [];
  let text = '', emitted = 0;
  let logits = dec.step([{ cache, tokens: ids }])[0]!;
  for (let i = 0; i < Math.min(a.maxTokens, room); i++) {
    const next = sampleToken(logits, { temperature: a.temperature, topK: a.topK, topP: a.topP }, rng);
    if (next === eot) break;
    out.push(next);
    text = tok.decode(out);
    const hit = a.stop.map((s) => text.indexOf(s)).filter((p) => p >= 0);
    if (hit.length) { text = text.slice(0, Math.min(...hit)); a.write?.(text.slice(emitted)); return text; }
    // hold back a possibly incomplete UTF-8 character and any prefix of a stop string
    let safe = text.endsWith('\uFFFD') ? text.length - 1 : text.length;
    for (const s of a.stop) for (let k = Math.min(s.length - 1, text.length); k > 0; k--) if (text.endsWith(s.slice(0, k))) { safe = Math.min(safe, text.length - k); break; }
    if (safe > emitted) { a.write?.(text.slice(emitted, safe)); emitted = safe; }
    if (cache.length >= model.config.contextLength) break;
    logits = dec.step([{ cache, tokens: [next] }])[0]!;
  }
  if (text.length > emitted) a.write?.(text.slice(emitted));
  return text;
}

export async function run(argv: string[]): Promise<number> {
  const p = parse('sample', '--model DIR --prompt TEXT [options]', OPTIONS, argv, 'Streams a continuation of the prompt to stdout.');
  if (!p) return 0;
  const v = p.values;
  if (!v.model) throw new InputError('--model DIR is required');
  process.stdout.write(v.prompt ?? '');
  generateText({
    modelDir: v.model, prompt: v.prompt ?? '', maxTokens: num('max-tokens', v['max-tokens'], 200, { min: 1, int: true }),
    temperature: num('temperature', v.temperature, 0.8, { min: 0 }), topK: num('top-k', v['top-k'], 0, { min: 0, int: true }),
    topP: num('top-p', v['top-p'], 1, { min: 0, max: 1 }), seed: num('seed', v.seed, 0, { int: true }), stop: v.stop ?? [],
    write: (s) => process.stdout.write(s),
  });
  process.stdout.write('\n');
  return 0;
}
