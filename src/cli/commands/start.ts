/**
 * `lumen start` (npm start), the main job: train the default multimodal model (`mm-small`, into
 * runs/mm-small) if it has not finished — resuming a run that was interrupted — then serve it and
 * print the URL of the chat page. Options go to `lumen serve` (e.g. --port, --api-key);
 * `--model DIR` serves DIR instead and trains nothing.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { trainMultimodalMain, resolveMMConfig, trainedSteps, readMultimodalConfig } from '../../train/multimodal.ts';
import { withVisionDefaults } from '../../models/vit.ts';
import { InputError } from '../../util/errors.ts';

export const START_MODEL_DIR = join('runs', 'mm-small');

/**
 * Whether DIR holds a finished mm-small run (its saved trainer state reached the preset's last
 * step). A run of another configuration (e.g. an older mm-small) cannot be resumed: InputError.
 */
export function multimodalDone(dir = START_MODEL_DIR): boolean {
  const cfg = resolveMMConfig('mm-small');
  if (existsSync(join(dir, 'config.json'))) {
    const saved = readMultimodalConfig(dir);
    // Fields added after a run was saved take their defaults; keys sorted so their order does not matter.
    const vision = (v: typeof cfg.vision) => {
      const full: Record<string, unknown> = withVisionDefaults(v);
      return JSON.stringify(Object.keys(full).sort().map((k) => [k, full[k]]));
    };
    if (vision(saved.vision) !== vision(cfg.vision) || saved.model.layers !== cfg.model.layers || saved.model.width !== cfg.model.width) {
      throw new InputError(`${dir} holds a multimodal model of another configuration than today's mm-small; move it away to train a new one, or serve it with \`lumen start --model ${dir}\``);
    }
  }
  return trainedSteps(dir) >= cfg.init.alignSteps + cfg.steps;
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    console.log(`Usage: lumen start [serve options]

The main job: trains the default multimodal model (mm-small, into ${START_MODEL_DIR}; resumes an
interrupted run) unless it has finished, then serves it with the chat page at / and the OpenAI API
at /v1. Serve options (--port, --host, --api-key, ...): see \`lumen serve --help\`. With --model DIR
it serves DIR and trains nothing.`);
    return 0;
  }
  const serve = (await import('./serve.ts')) as { run(a: string[]): Promise<number> };
  if (argv.includes('--model')) return serve.run(argv);
  if (!multimodalDone()) {
    console.error(`lumen start: no finished multimodal model in ${START_MODEL_DIR} — training mm-small first (interrupt and rerun to resume)`);
    const rc = await trainMultimodalMain({ config: 'mm-small', out: START_MODEL_DIR, resume: true });
    if (rc !== 0) return rc;
  }
  return serve.run(['--model', START_MODEL_DIR, ...argv]);
}
