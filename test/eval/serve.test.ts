/**
 * The endpoint path against the real in-process `lumen serve` (src/serve) over the serving
 * tests' deterministic fake model: loglikelihood through /v1/completions echo + logprobs, chat
 * and completions generation, a whole task, and the cache.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../serve/helpers.ts';
import { tempFiles } from './helpers.ts';
import { OpenAIEndpointModel } from '../../src/eval/endpoint.ts';
import { loadTask } from '../../src/eval/task.ts';
import { evaluateTask } from '../../src/eval/scoring.ts';

const FAST = { baseMs: 1, maxMs: 5, timeoutMs: 30_000 };

test('OpenAIEndpointModel against lumen serve: loglikelihood is consistent, greedy matches generation, tasks run', async () => {
  const { server, url, model } = await startServer({ apiKey: 'sk-test' }, { noEnd: true });
  const t = tempFiles({
    'mc.csv': 'Pick one: x or q?,x,q,zz,kw,A\nAnother: y?,aa,y,b,c,B\n',
    'mc.yaml': 'name: mc\nsource: {format: mmlu_csv, path: mc.csv}\nprompt: {template: "{{question}}\\n{{choices}}\\nAnswer:", continuation: " {{choice}}"}\nscoring: {mode: loglikelihood}\nmetrics: [acc, acc_norm]\n',
  });
  try {
    const ep = new OpenAIEndpointModel({ url, apiKey: 'sk-test', model: model.name, mode: 'completions', retry: FAST, cacheDir: t.path('cache') });
    // Chain rule: log P(ab | c) = log P(a | c) + log P(b | c a) (byte tokens, so token boundaries agree).
    const [ab, a, b] = await ep.loglikelihood([
      { context: 'Q: x', continuation: ' yz!' }, { context: 'Q: x', continuation: ' y' }, { context: 'Q: x y', continuation: 'z!' },
    ]);
    assert.ok(ab!.logprob < 0 && Number.isFinite(ab!.logprob));
    assert.ok(Math.abs(ab!.logprob - (a!.logprob + b!.logprob)) < 1e-4, `${ab!.logprob} vs ${a!.logprob} + ${b!.logprob}`);
    assert.equal(ab!.tokens, a!.tokens + b!.tokens);
    // The greedy continuation is reported as greedy.
    const [g] = await ep.generate([{ prompt: 'Hello', maxTokens: 4, temperature: 0 }]);
    assert.ok(g!.length > 0);
    const [lg] = await ep.loglikelihood([{ context: 'Hello', continuation: g! }]);
    assert.equal(lg!.greedy, true);
    // Chat mode generation.
    const chat = new OpenAIEndpointModel({ url, apiKey: 'sk-test', model: model.name, mode: 'chat', retry: FAST, cacheDir: null });
    const [c] = await chat.generate([{ messages: [{ role: 'user', content: 'Hi there' }], maxTokens: 5, temperature: 0 }]);
    assert.equal(typeof c, 'string');
    // A whole multiple-choice task; its choices agree with direct loglikelihood calls.
    const task = loadTask(t.path('mc.yaml'));
    const r = await evaluateTask(task, ep, { quiet: true });
    assert.equal(r.outcomes.length, 2);
    const direct = await ep.loglikelihood(['x', 'q', 'zz', 'kw'].map((ch) => ({ context: 'Pick one: x or q?\nA. x\nB. q\nC. zz\nD. kw\nAnswer:', continuation: ` ${ch}` })));
    const best = direct.reduce((bi, d, i) => (d.logprob > direct[bi]!.logprob ? i : bi), 0);
    assert.equal(r.outcomes[0]!.chosen, best);
    // The rerun is free.
    const ep2 = new OpenAIEndpointModel({ url, apiKey: 'sk-test', model: model.name, mode: 'completions', retry: FAST, cacheDir: t.path('cache') });
    await evaluateTask(task, ep2, { quiet: true });
    assert.equal(ep2.stats.requests, 0);
    // A wrong key is a clear, unretried error.
    const bad = new OpenAIEndpointModel({ url, apiKey: 'wrong', model: model.name, retry: FAST, cacheDir: null });
    await assert.rejects(bad.generate([{ prompt: 'x', maxTokens: 1, temperature: 0 }]), /HTTP 401/);
    assert.equal(bad.stats.requests, 1);
  } finally { t.cleanup(); await server.shutdown(); }
});
