/**
 * Alignment data and reward machinery that needs no neural network: the written policy, the
 * data generator (SFT conversations, preference pairs, held-out eval prompts, encyclopedia
 * pretraining text), JSONL loaders, rule-based reward models (rubric graders), GAE and KL
 * controllers, and alignment metrics.
 */
export * from './policy.ts';
export * from './template.ts';
export * from './encyclopedia.ts';
export * from './data-gen.ts';
export * from './jsonl.ts';
export * from './loaders.ts';
export * from './rubric-config.ts';
export * from './program-grader.ts';
export * from './model-grader.ts';
export * from './rubrics.ts';
export * from './gae.ts';
export * from './reference-losses.ts';
export * from './metrics.ts';
// Neural training loops (need a GPT): shared helpers, SFT, reward model, DPO, PPO, serving adapter, evaluation.
export * from './train-utils.ts';
export * from './sft.ts';
export * from './reward-model.ts';
export * from './dpo.ts';
export * from './ppo.ts';
export * from './policy-model.ts';
export * from './evaluate.ts';
