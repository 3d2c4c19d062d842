/**
 * `lumen start` (npm start): serve the model the speedrun produced, running the speedrun first
 * when there is none. Options after `--` go to `lumen serve` (e.g. --port, --api-key).
 */
import { speedrunDone, speedrunModel, runSpeedrun } from './speedrun.ts';

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    console.log('Usage: lumen start [serve options]\n\nServes runs/speedrun/rlhf, running `lumen speedrun` first if it has not finished.\nServe options: see `lumen serve --help`.');
    return 0;
  }
  if (!speedrunDone()) {
    console.error('lumen start: no speedrun model yet — running the speedrun first (resumable: rerun to continue)');
    await runSpeedrun('runs/speedrun', 1, true);
  }
  const serve = (await import('./serve.ts')) as { run(a: string[]): Promise<number> };
  return serve.run(['--model', speedrunModel(), ...argv]);
}
