/**
 * `lumen eval`: run evaluation tasks against a local model or an OpenAI-compatible endpoint and
 * write a report card (report.md, eval.json, calibration plot, per-item outcomes).
 */
import { num, parse } from '../args.ts';
import { InputError } from '../../util/errors.ts';
import { loadTask, resolveTaskRef } from '../../eval/task.ts';
import { OpenAIEndpointModel } from '../../eval/endpoint.ts';
import { loadLocalEvalModel } from '../../eval/local-model.ts';
import { runEval } from '../../eval/harness.ts';
import type { EvalModel } from '../../eval/model.ts';

const OPTIONS = {
  model: { type: 'string', help: 'a local Lumen model directory' },
  endpoint: { type: 'string', help: 'an OpenAI-compatible base URL (http://host:port or .../v1)' },
  'api-key': { type: 'string', help: 'API key for the endpoint (default: $OPENAI_API_KEY)' },
  'model-name': { type: 'string', help: "the endpoint's model name (the `model` field of requests)", default: 'lumen' },
  'endpoint-mode': { type: 'string', help: 'where the endpoint generates: chat (/v1/chat/completions) or completions (/v1/completions)', default: 'chat' },
  'no-logprobs': { type: 'boolean', help: 'the endpoint has no prompt logprobs (loglikelihood tasks are refused)' },
  tasks: { type: 'string', multiple: true, help: 'task files or names (tasks/<name>.yaml); repeat or separate with commas' },
  out: { type: 'string', help: 'output folder for report.md, eval.json and plots', default: 'eval-out' },
  limit: { type: 'string', help: 'evaluate only the first N items of each task' },
  concurrency: { type: 'string', help: 'requests in flight at once (endpoint)', default: '4' },
  retries: { type: 'string', help: 'retries on 429/5xx/network errors (endpoint)', default: '5' },
  cache: { type: 'string', help: 'response cache folder (endpoint)', default: '.lumen-cache/eval' },
  'no-cache': { type: 'boolean', help: 'do not read or write the response cache' },
  'contamination-corpus': { type: 'string', multiple: true, help: 'training text (files, folders, globs) to check items against' },
  'contamination-index': { type: 'string', help: 'folder where the corpus index is saved and reused', default: '.lumen-cache/contamination' },
  bootstrap: { type: 'string', help: 'bootstrap resamples for standard errors', default: '1000' },
  seed: { type: 'string', help: 'seed of the contamination substring sampling', default: '0' },
  quiet: { type: 'boolean', help: 'no progress bars' },
} as const;


/** Runs `lumen eval`. */
export async function run(argv: string[]): Promise<number> {
  if (argv[0] === 'vision') {
    // `lumen eval vision`: per-task accuracy of a multimodal model on the synthetic visual tasks.
    const mod = await import('./eval-vision.ts');
    return mod.run(argv.slice(1));
  }
  const p = parse('eval', '(--model DIR | --endpoint URL) --tasks <task> [...]', OPTIONS, argv,
    'Scores a model on task files (see docs/eval.md) and writes a report card.');
  if (!p) return 0;
  const v = p.values;
  const refs = [...(v.tasks ?? []), ...p.positionals].flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean);
  if (refs.length === 0) throw new InputError('--tasks: name at least one task file or task name (e.g. --tasks tasks/arith.yaml)');
  if ((v.model === undefined) === (v.endpoint === undefined)) throw new InputError('give exactly one of --model DIR or --endpoint URL');
  const mode = v['endpoint-mode'];
  if (mode !== 'chat' && mode !== 'completions') throw new InputError(`--endpoint-mode: expected chat or completions, got '${mode}'`);
  const tasks = refs.map((r) => loadTask(resolveTaskRef(r)));
  const names = new Set<string>();
  for (const t of tasks) {
    if (names.has(t.name)) throw new InputError(`--tasks: two task files are both named '${t.name}'`);
    names.add(t.name);
  }
  const limit = v.limit === undefined ? undefined : num('limit', v.limit, 0, { min: 1, int: true });
  let endpoint: OpenAIEndpointModel | null = null;
  if (v.endpoint !== undefined) {
    endpoint = new OpenAIEndpointModel({
      url: v.endpoint, apiKey: v['api-key'] ?? process.env.OPENAI_API_KEY, model: v['model-name'] ?? 'lumen', mode,
      logprobs: !v['no-logprobs'], concurrency: num('concurrency', v.concurrency, 4, { min: 1, max: 256, int: true }),
      retry: { maxRetries: num('retries', v.retries, 5, { min: 0, max: 20, int: true }) },
      cacheDir: v['no-cache'] ? null : v.cache,
    });
  }
  const local = endpoint ? null : await loadLocalEvalModel(v.model!);
  const model: EvalModel = endpoint ?? local!;
  const res = await runEval({
    tasks, model, out: v.out, limit, quiet: v.quiet,
    bootstrap: num('bootstrap', v.bootstrap, 1000, { min: 10, max: 100000, int: true }),
    corpus: v['contamination-corpus'], indexDir: v['contamination-index'], seed: num('seed', v.seed, 0, { int: true }),
  }).finally(() => local?.close());
  console.log(res.table);
  if (res.calibration) console.log(`\ncalibration: ECE ${(100 * res.calibration.ece).toFixed(1)}% over ${res.calibration.n} multiple-choice answers (10 bins)`);
  if (endpoint) console.log(`endpoint: ${endpoint.stats.requests} HTTP requests (${endpoint.stats.retries} retries), ${endpoint.cache?.hits ?? 0} cache hits`);
  console.log(`wrote ${v.out}/report.md and ${v.out}/eval.json`);
  return 0;
}
