/**
 * `lumen speedrun`: the whole pipeline at small scale in one command — alignment data and the
 * pretraining corpus, tokenizer and pretraining, the multimodal model, chat SFT, reward model,
 * RLHF (PPO + rule-based rewards), DPO, the before/after evaluation and a report card.
 *
 * Each stage runs the same code as its own command and ends by writing `<stage>/DONE.json`; a
 * rerun skips finished stages, and a stage killed half-way resumes or restarts on its own
 * (atomic checkpoints), so the speedrun is resumable as a whole.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from '../args.ts';
import { writeJsonAtomic, ensureDir, writeFileAtomic } from '../../util/fs.ts';
import { fmtTime } from '../../util/progress.ts';
import { InputError } from '../../util/errors.ts';
import { generatedData } from '../../align/train-utils.ts';
import { writeAlignmentData } from '../../align/data-gen.ts';
import { evaluateAlignment, type ModelEvaluation } from '../../align/evaluate.ts';
import { defaultCorpus } from '../../io/files.ts';

/** Optimizer steps of the speedrun's own training stages (the others use their commands' defaults). */
export const SPEEDRUN_STEPS = { pretrain: 600, sft: 400 };

const OPTIONS = {
  out: { type: 'string', help: 'speedrun directory', default: 'runs/speedrun' },
  seed: { type: 'string', help: 'seed of the generated alignment data', default: '1' },
  'ppo-seed': { type: 'string', help: 'seed of the PPO stage alone (default: --seed); the data, eval set and corpus keep --seed' },
  'skip-multimodal': { type: 'boolean', help: 'leave out the multimodal stage' },
  'pretrain-steps': { type: 'string', help: `optimizer steps of the text pretraining (default ${SPEEDRUN_STEPS.pretrain})` },
  'sft-steps': { type: 'string', help: `optimizer steps of chat SFT (default ${SPEEDRUN_STEPS.sft})` },
} as const;

export interface Stage {
  name: string;
  what: string;
  run: () => Promise<unknown>;
}

/** The directory of the model a finished speedrun serves (the RLHF policy). */
export function speedrunModel(out = 'runs/speedrun'): string {
  return join(out, 'rlhf');
}

export function speedrunDone(out = 'runs/speedrun'): boolean {
  return existsSync(join(out, 'report', 'DONE.json'));
}

async function command(name: string, argv: string[]): Promise<void> {
  const mod = (await import(`./${name}.ts`)) as { run(a: string[]): Promise<number> };
  const code = await mod.run(argv);
  if (code !== 0) throw new InputError(`stage command 'lumen ${name} ${argv.join(' ')}' exited with ${code}`);
}

/** Plain-text rendering of conversations for the pretraining corpus (roles as words, not special tokens). */
function chatText(messages: { role: string; content: string | unknown[] }[]): string {
  return messages.map((m) => `${m.role === 'user' ? 'User' : m.role === 'assistant' ? 'Assistant' : 'System'}: ${typeof m.content === 'string' ? m.content : ''}`).join('\n');
}

export async function runSpeedrun(out: string, seed: number, withMultimodal: boolean, ppoSeed = seed, steps = SPEEDRUN_STEPS): Promise<void> {
  ensureDir(out);
  const data = join(out, 'data');
  const stages: Stage[] = [
    {
      name: 'data', what: 'alignment data from the written policy + pretraining corpus',
      run: async () => {
        const d = generatedData(undefined, seed);
        const paths = writeAlignmentData(d, data);
        // Pretraining text: the encyclopedia (facts the factual questions ask about), the chat
        // transcripts as plain text, and a slice of the embedded corpus for general text.
        const chat = d.sft.map((c) => chatText(c.messages as { role: string; content: string }[])).join('\n\n');
        writeFileAtomic(join(data, 'chat.txt'), chat);
        return { ...paths, corpus: [paths.encyclopedia, join(data, 'chat.txt')] };
      },
    },
    {
      name: 'pretrain', what: 'tokenizer (1024 tokens) + the small GPT',
      run: () => command('train', ['--config', 'small', '--out', join(out, 'pretrain'), '--no-sample',
        '--input', join(data, 'encyclopedia.txt'), '--input', join(data, 'chat.txt'), ...defaultSlice(),
        '--set', 'model.vocabSize=1024', '--set', `steps=${steps.pretrain}`, '--resume']),
    },
    ...(withMultimodal ? [{
      name: 'multimodal', what: 'the mm-small vision-language model on the synthetic visual tasks',
      run: () => command('train', ['--config', 'mm-small', '--out', join(out, 'multimodal'), '--resume']),
    }] : []),
    { name: 'sft', what: 'chat SFT', run: () => command('sft', ['--model', join(out, 'pretrain'), '--generate', '--seed', String(seed), '--steps', String(steps.sft), '--out', join(out, 'sft'), '--resume']) },
    { name: 'rm', what: 'reward model', run: () => command('rm', ['--model', join(out, 'sft'), '--generate', '--seed', String(seed), '--out', join(out, 'rm')]) },
    { name: 'rlhf', what: 'RLHF with PPO and rule-based rewards', run: () => command('rlhf', ['--policy', join(out, 'sft'), '--reward-model', join(out, 'rm'), '--seed', String(seed), ...(ppoSeed !== seed ? ['--ppo-seed', String(ppoSeed)] : []), '--out', join(out, 'rlhf')]) },
    { name: 'dpo', what: 'DPO (for comparison)', run: () => command('dpo', ['--model', join(out, 'sft'), '--generate', '--seed', String(seed), '--out', join(out, 'dpo')]) },
    {
      name: 'report', what: 'before/after evaluation and the report card',
      run: async () => {
        const d = generatedData(undefined, seed);
        const report = await evaluateAlignment({
          models: { base: join(out, 'pretrain'), sft: join(out, 'sft'), rlhf: join(out, 'rlhf'), dpo: join(out, 'dpo') },
          baseline: 'sft', rewardModelDir: join(out, 'rm'), evalPrompts: d.eval, outDir: join(out, 'report'), seed,
        });
        writeFileSync(join(out, 'report', 'report.md'), reportCard(out, report as unknown as Record<string, unknown>));
        return { report: join(out, 'report', 'report.md') };
      },
    },
  ];
  const t0 = Date.now();
  for (const [i, s] of stages.entries()) {
    const done = join(out, s.name, 'DONE.json');
    if (existsSync(done)) { console.error(`speedrun [${i + 1}/${stages.length}] ${s.name}: done already`); continue; }
    console.error(`speedrun [${i + 1}/${stages.length}] ${s.name}: ${s.what} (${fmtTime((Date.now() - t0) / 1000)} elapsed)`);
    const st = Date.now();
    const result = await s.run();
    ensureDir(join(out, s.name));
    writeJsonAtomic(done, { stage: s.name, seconds: (Date.now() - st) / 1000, finishedAt: new Date().toISOString(), result: result ?? null });
  }
  console.error(`speedrun finished in ${fmtTime((Date.now() - t0) / 1000)}; report card: ${join(out, 'report', 'report.md')}`);
}

/** A few MB of the embedded corpus as extra --input flags (general text next to the policy text). */
function defaultSlice(): string[] {
  return defaultCorpus(process.cwd(), 4 * 1024 * 1024).flatMap((f) => ['--input', f]);
}

function reportCard(out: string, r: Record<string, unknown>): string {
  const stageSecs = ['data', 'pretrain', 'multimodal', 'sft', 'rm', 'rlhf', 'dpo'].map((s) => {
    const p = join(out, s, 'DONE.json');
    return existsSync(p) ? `| ${s} | ${fmtTime((JSON.parse(readFileSync(p, 'utf8')) as { seconds: number }).seconds)} |` : null;
  }).filter(Boolean);
  const est = (e: { value: number; se: number } | undefined) => (e && Number.isFinite(e.value) ? `${e.value.toFixed(3)} ± ${e.se.toFixed(3)}` : '—');
  const rows = ['base', 'sft', 'rlhf', 'dpo'].filter((k) => r[k]).map((k) => {
    const m = r[k] as ModelEvaluation;
    return `| ${k} | ${est(m.metrics.disallowedAnswerRate)} | ${est(m.metrics.overRefusalRate)} | ${est(m.metrics.factualAccuracy)} | ` +
      `${est(m.metrics.unknowableIdkRate)} | ${est(m.winRateVsBaseline)} | ${est(m.klToReference)} | ${m.calibration.ece.toFixed(3)} |`;
  });
  const summaryPath = join(out, 'rlhf', 'rlhf-summary.json');
  const ppo = existsSync(summaryPath) ? JSON.parse(readFileSync(summaryPath, 'utf8')) as { steps: number; selectedStep?: number; validationPrompts?: number } : null;
  const chosen = ppo?.selectedStep !== undefined && (ppo.validationPrompts ?? 0) > 0
    ? [`The RLHF policy is PPO step ${ppo.selectedStep} of ${ppo.steps}: the best validation reward on ${ppo.validationPrompts} prompts in phrasings no stage trains on (../rlhf/ppo-validation.png).`, '']
    : [];
  return [
    '# Lumen speedrun report card', '',
    'Small-scale replay of the pipeline: tokenizer → pretraining → (multimodal) → SFT → reward model → RLHF → DPO → evaluation.',
    'Numbers are measured on held-out prompts of the written policy (data/policy/default.yaml); see alignment-eval.json for standard errors.', '',
    '| model | answers disallowed | refuses allowed | factual accuracy | "I don\'t know" on unknowable | RM win rate vs SFT | KL to SFT (nats) | ECE |',
    '|---|---|---|---|---|---|---|---|', ...rows, '', ...chosen,
    '## Goals', '', '```json', JSON.stringify(r.goals ?? null, null, 2), '```', '',
    '## Stage times', '', '| stage | time |', '|---|---|', ...stageSecs as string[], '',
    'Plots: reliability diagrams and the before/after chart in this folder; PPO reward, KL and refusal curves in ../rlhf/.', '',
  ].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const p = parse('speedrun', '[--out runs/speedrun]', OPTIONS, argv,
    'Runs the whole pipeline at small scale (resumable stages): data, tokenizer + pretraining, multimodal,\nSFT, reward model, RLHF, DPO, evaluation and a report card.');
  if (!p) return 0;
  const seed = Number(p.values.seed ?? '1');
  const mm = !p.values['skip-multimodal'] && existsSync(new URL('../../train/multimodal.ts', import.meta.url));
  const ppoSeed = p.values['ppo-seed'] === undefined ? seed : Number(p.values['ppo-seed']);
  if (!Number.isInteger(ppoSeed)) throw new InputError(`--ppo-seed: expected an integer, got '${p.values['ppo-seed']}'`);
  const stepsOf = (flag: 'pretrain-steps' | 'sft-steps', dflt: number) => {
    const v = p.values[flag];
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InputError(`--${flag}: expected a positive integer, got '${v}'`);
    return n;
  };
  await runSpeedrun(p.values.out ?? 'runs/speedrun', seed, mm, ppoSeed, { pretrain: stepsOf('pretrain-steps', SPEEDRUN_STEPS.pretrain), sft: stepsOf('sft-steps', SPEEDRUN_STEPS.sft) });
  return 0;
}
