/**
 * The `lumen` command line: one entry point, one file per command under ./commands/.
 * Each command module exports `run(argv: string[]): Promise<number>` (the exit code) and
 * prints its own `--help`.
 */
import { readFileSync } from 'node:fs';
import { LumenError } from '../util/errors.ts';

export interface Command {
  name: string;
  summary: string;
  /** Module path relative to this file; loaded only when the command runs. */
  module: string;
}

export const COMMANDS: Command[] = [
  { name: 'start', summary: 'the main job (npm start): train the default multimodal model if none has finished, then serve it with the chat page', module: './commands/start.ts' },
  { name: 'speedrun', summary: 'the whole pipeline at small scale: pretrain, multimodal, SFT, RM, RLHF, DPO, eval, report card', module: './commands/speedrun.ts' },
  { name: 'train', summary: 'pretrain a GPT (default: the small preset on the embedded corpus)', module: './commands/train.ts' },
  { name: 'sample', summary: 'stream a continuation of a prompt from a trained model', module: './commands/sample.ts' },
  { name: 'data', summary: 'tokenize text into binary shards (data prepare)', module: './commands/data.ts' },
  { name: 'chat', summary: 'answer a question about images with a multimodal model (streamed)', module: './commands/chat.ts' },
  { name: 'serve', summary: 'serve a model over the OpenAI API, with a chat page at /', module: './commands/serve.ts' },
  { name: 'eval', summary: 'score a model or endpoint on task files (report card, contamination, calibration); eval vision', module: './commands/eval.ts' },
  { name: 'sft', summary: 'chat supervised fine-tuning with packing (loss on assistant tokens only)', module: './commands/sft.ts' },
  { name: 'rm', summary: 'train a reward model (scalar head, Bradley–Terry) on preference pairs', module: './commands/rm.ts' },
  { name: 'rlhf', summary: 'RLHF with PPO: reward model + rule-based rewards, KL to a frozen reference', module: './commands/rlhf.ts' },
  { name: 'dpo', summary: 'direct preference optimisation against a frozen reference', module: './commands/dpo.ts' },
  { name: 'scale', summary: 'scaling laws: plan a sweep, run it, fit and predict a large run, verify; LR-transfer check', module: './commands/scale.ts' },
  { name: 'tokenizer', summary: 'train, encode and decode byte-level BPE tokenizers', module: './commands/tokenizer.ts' },
];

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function help(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `lumen ${version()} — build GPT-4-style models end to end in TypeScript`,
    '',
    'Usage: lumen <command> [options]      (lumen <command> --help for its options)',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'Global options: --help, --version. Environment: LUMEN_THREADS (kernel threads), LUMEN_BACKEND (native|reference).',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    console.log(version());
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    console.error(`lumen: unknown command '${name}'. Run 'lumen --help' for the list.`);
    return 2;
  }
  try {
    const mod = (await import(cmd.module)) as { run(argv: string[]): Promise<number> };
    return await mod.run(rest);
  } catch (e) {
    if (e instanceof LumenError) {
      console.error(`lumen ${name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
