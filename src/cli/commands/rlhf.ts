/** `lumen rlhf`: PPO against a reward model plus rule-based rewards, with a frozen reference and a KL penalty. */
import { parse, num } from '../args.ts';
import { trainPpo, gptGraderModel, type KlOptions, type PpoPrompt } from '../../align/ppo.ts';
import { RuleRewardModel } from '../../align/rubrics.ts';
import { loadRubricConfig } from '../../align/rubric-config.ts';
import { readJsonl } from '../../align/jsonl.ts';
import { conversationsFrom, generatedData, loadChatModel } from '../../align/train-utils.ts';
import { InputError } from '../../util/errors.ts';

const OPTIONS = {
  policy: { type: 'string', help: 'policy model directory to start from (usually the SFT model); also the frozen reference' },
  'reward-model': { type: 'string', help: 'reward model directory from `lumen rm`' },
  rubrics: { type: 'string', help: 'rubric config for the rule-based rewards (default: data/policy/rubrics.yaml)' },
  grader: { type: 'string', help: 'rubric grader: program, or model (zero-shot rubric prompt scored by --grader-model)', default: 'program' },
  'grader-model': { type: 'string', help: 'model directory that grades rubrics when --grader model (default: the reward model\'s language model)' },
  prompts: { type: 'string', help: 'rollout prompts JSONL ({"prompt", "tags"?} per line); default: the policy\'s generated RL prompts' },
  'validation-prompts': { type: 'string', help: 'validation prompts JSONL (same form), phrasings not trained on, that choose the saved checkpoint; default: the policy\'s generated validation prompts (none with --prompts)' },
  'validate-every': { type: 'string', help: 'PPO steps between validations; the policy with the best validation reward is saved (0 = keep the last step)', default: '10' },
  'weight-average': { type: 'string', help: 'decay of a moving average of the policy weights, folded in every step; the average is validated and saved (0 = off)', default: '0' },
  'keep-checkpoints': { type: 'boolean', help: 'also save the policy of every validated step under DIR/steps/step-NNNN' },
  'ptx-coef': { type: 'string', help: 'weight of a demonstration loss mixed into every PPO update (PPO-ptx; 0 = off)', default: '0' },
  'ptx-data': { type: 'string', help: 'demonstration conversations JSONL for --ptx-coef (default: the policy\'s generated SFT conversations; required with --prompts)' },
  'ptx-batch': { type: 'string', help: 'demonstration conversations per PPO update', default: '8' },
  'policy-file': { type: 'string', help: 'policy YAML for the generated prompts (default: data/policy/default.yaml)' },
  out: { type: 'string', help: 'output directory (model, value_head.safetensors, ppo-metrics.jsonl, plots)', default: 'runs/rlhf' },
  steps: { type: 'string', help: 'PPO steps (rollout batches)', default: '80' },
  batch: { type: 'string', help: 'rollouts per step', default: '128' },
  epochs: { type: 'string', help: 'PPO epochs per batch', default: '4' },
  minibatch: { type: 'string', help: 'rollouts per minibatch', default: '32' },
  lr: { type: 'string', help: 'learning rate', default: '2e-5' },
  clip: { type: 'string', help: 'policy ratio clip ε', default: '0.2' },
  lambda: { type: 'string', help: 'GAE λ (1 = Monte-Carlo returns minus the value baseline)', default: '1' },
  'kl-coef': { type: 'string', help: 'KL coefficient β (initial value when adaptive)', default: '0.05' },
  'kl-target': { type: 'string', help: 'target KL per response for the adaptive controller; 0 = fixed β', default: '2' },
  temperature: { type: 'string', help: 'rollout sampling temperature (the tempered policy is what PPO optimises)', default: '0.7' },
  'max-tokens': { type: 'string', help: 'tokens per response at most', default: '48' },
  'rm-coef': { type: 'string', help: "weight of the normalised reward-model score (times the rubric's reward_model_weight)", default: '1' },
  'samples-per-prompt': { type: 'string', help: "responses per prompt, scores centred on their prompt's mean (must divide --batch)", default: '4' },
  'rule-coef': { type: 'string', help: 'weight of the rule-based reward', default: '2' },
  'kind-weights': { type: 'string', help: 'turns per round of the balanced prompt draw, as kind=N,... (other kinds 1), e.g. disallowed=2', default: 'disallowed=3' },
  'no-balance': { type: 'boolean', help: 'draw rollout prompts uniformly instead of evenly across prompt kinds' },
  seed: { type: 'string', help: 'seed (the generated RL prompts, and PPO unless --ppo-seed)', default: '1' },
  'ppo-seed': { type: 'string', help: 'seed of PPO alone (rollout sampling, prompt order, value head); default: --seed. The generated prompts keep --seed' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const p = parse('rlhf', '--policy DIR --reward-model DIR [--rubrics FILE] [--out DIR] [options]', OPTIONS, argv,
    'RLHF with PPO: rollouts through the serving engine, reward = reward model + rule-based rubric rewards, per-token KL\n'
    + 'penalty to the frozen reference (fixed or adaptive β), value head, GAE, clipped policy and value losses, several\n'
    + 'epochs of minibatches per batch. Logs DIR/ppo-metrics.jsonl and plots reward, KL and refusal rates (SVG + PNG).');
  if (!p) return 0;
  const v = p.values;
  if (!v.policy) throw new InputError('--policy DIR is required');
  if (!v['reward-model']) throw new InputError('--reward-model DIR is required');
  const seed = num('seed', v.seed, 1, { int: true });
  const ppoSeed = v['ppo-seed'] === undefined ? seed : num('ppo-seed', v['ppo-seed'], seed, { int: true });
  if (v.grader !== 'program' && v.grader !== 'model') throw new InputError(`--grader: expected program or model, got '${v.grader}'`);
  const config = v.rubrics ? loadRubricConfig(v.rubrics) : loadRubricConfig();
  let rules: RuleRewardModel;
  if (v.grader === 'model') {
    const g = loadChatModel(v['grader-model'] ?? v['reward-model'], '--grader-model');
    rules = new RuleRewardModel(config, { grader: 'model', model: gptGraderModel(g.model, g.tok) });
  } else rules = new RuleRewardModel(config, { grader: 'program' });
  let prompts: PpoPrompt[], validation: PpoPrompt[] = [];
  if (v.prompts) prompts = readPrompts(v.prompts);
  else {
    const g = generatedData(v['policy-file'], seed);
    prompts = g.rlPrompts.map((r) => ({ prompt: r.prompt, tags: r.tags, kind: r.kind }));
    validation = g.rlValidation.map((r) => ({ prompt: r.prompt, tags: r.tags, kind: r.kind }));
  }
  const ptxCoef = num('ptx-coef', v['ptx-coef'], 0, { min: 0 });
  if (ptxCoef > 0 && v.prompts && !v['ptx-data']) throw new InputError('--ptx-coef with --prompts needs --ptx-data FILE.jsonl (demonstration conversations)');
  const demos = ptxCoef > 0 ? conversationsFrom(v['ptx-data'], !v['ptx-data'], v['policy-file'], seed) : undefined;
  if (v['validation-prompts']) validation = readPrompts(v['validation-prompts']);
  const target = num('kl-target', v['kl-target'], 2, { min: 0 }), beta = num('kl-coef', v['kl-coef'], 0.05, { min: 0 });
  const kl: KlOptions = target > 0 ? { kind: 'adaptive', init: Math.max(beta, 1e-6), target, horizon: 2000 } : { kind: 'fixed', beta };
  const weightAverage = num('weight-average', v['weight-average'], 0, { min: 0 });
  if (weightAverage >= 1) throw new InputError(`--weight-average: the decay must be below 1, got ${weightAverage}`);
  const r = await trainPpo({
    policyDir: v.policy, rewardModelDir: v['reward-model'], outDir: v.out!, prompts, rules, kl, seed: ppoSeed,
    steps: num('steps', v.steps, 80, { int: true, min: 1 }), batchSize: num('batch', v.batch, 128, { int: true, min: 2 }),
    epochs: num('epochs', v.epochs, 4, { int: true, min: 1 }), minibatch: num('minibatch', v.minibatch, 32, { int: true, min: 1 }),
    lr: num('lr', v.lr, 2e-5, { min: 0 }), clip: num('clip', v.clip, 0.2, { min: 0.01, max: 0.99 }), lambda: num('lambda', v.lambda, 1, { min: 0, max: 1 }),
    temperature: num('temperature', v.temperature, 0.7, { min: 0.05, max: 2 }), maxTokens: num('max-tokens', v['max-tokens'], 48, { int: true, min: 1 }),
    kindWeights: parseKindWeights(v['kind-weights'] ?? ''),
    rmCoef: num('rm-coef', v['rm-coef'], 1), ruleCoef: num('rule-coef', v['rule-coef'], 2), balanceKinds: !v['no-balance'],
    samplesPerPrompt: num('samples-per-prompt', v['samples-per-prompt'], 4, { int: true, min: 1 }),
    validation, validateEvery: num('validate-every', v['validate-every'], 10, { int: true, min: 0 }),
    weightAverage, keepCheckpoints: !!v['keep-checkpoints'],
    ptxCoef, ptxConversations: demos, ptxBatch: num('ptx-batch', v['ptx-batch'], 8, { int: true, min: 1 }),
  });
  const first = r.rows[0]!, last = r.rows[r.rows.length - 1]!;
  const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(0)}%`);
  console.log(`rlhf: ${r.rows.length} PPO steps in ${r.seconds.toFixed(0)} s; reward ${first.reward.toFixed(3)} → ${last.reward.toFixed(3)}, KL ${last.kl.toFixed(3)}, `
    + `answers to disallowed ${pct(first.disallowed_answer_rate)} → ${pct(last.disallowed_answer_rate)}, over-refusal ${pct(first.over_refusal_rate)} → ${pct(last.over_refusal_rate)} → ${r.outDir}`);
  if (r.validation.length > 0) {
    const sel = r.validation.find((x) => x.step === r.selectedStep)!;
    console.log(`rlhf: saved the policy of step ${r.selectedStep} (best validation reward ${sel.score.toFixed(3)} of ${r.validation.length - 1} validations on ${sel.prompts} unseen phrasings; `
      + `answers to disallowed ${pct(sel.disallowed_answer_rate)}, over-refusal ${pct(sel.over_refusal_rate)}; step 0: ${r.validation[0]!.score.toFixed(3)})`);
  }
  return 0;
}

/** Reads a prompts JSONL file: {"prompt": string, "tags"?: string[], "kind"?: string} per line. */
function readPrompts(path: string): PpoPrompt[] {
  return readJsonl(path).map(({ line, value }) => {
    const o = value as { prompt?: unknown; tags?: unknown; kind?: unknown };
    if (typeof o?.prompt !== 'string' || o.prompt === '') throw new InputError(`${path}:${line}: expected {"prompt": string, "tags"?: string[]}`);
    if (o.tags !== undefined && !(Array.isArray(o.tags) && o.tags.every((t) => typeof t === 'string'))) throw new InputError(`${path}:${line}: "tags" must be a list of strings`);
    if (o.kind !== undefined && typeof o.kind !== 'string') throw new InputError(`${path}:${line}: "kind" must be a string`);
    return { prompt: o.prompt, tags: o.tags as string[] | undefined, kind: o.kind as string | undefined };
  });
}

/** Parses `kind=N,kind=N` (positive integers) for --kind-weights. */
export function parseKindWeights(s: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of s.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    const m = /^([\w-]+)=(\d+)$/.exec(part);
    if (!m || Number(m[2]) < 1) throw new InputError(`--kind-weights: expected kind=N with N a positive integer, got '${part}'`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}
