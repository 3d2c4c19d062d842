import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeModel } from './fake-model.ts';
import { tempFiles } from './helpers.ts';
import { loadTask } from '../../src/eval/task.ts';
import { evaluateTask, fewshotIndices } from '../../src/eval/scoring.ts';
import { generateArithmetic } from '../../src/eval/formats/arithmetic.ts';
import { toPercentile } from '../../src/eval/exam.ts';

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test('loglikelihood MC: acc, acc_norm and confidence match a hand computation', async () => {
  // Item 1: endings " aa" (3 chars) and " bbbbbb" (7 chars), gold 1.
  //   logprobs -3, -4 -> acc picks 0 (wrong); per char -1.0 vs -0.571 -> acc_norm picks 1 (right).
  // Item 2: " cc" (3) -6, " d" (2) -1, gold 1 -> acc right, norm -2 vs -0.5 -> right.
  // Item 3: " eeee" (5) -2, " ff" (3) -1.5, gold 0 -> acc picks 1 (wrong); norm -0.4 vs -0.5 -> picks 0 (right).
  // Item 4: " g" (2) -1, " h" (2) -1 (tie), gold 1 -> both pick 0 (first on ties): wrong.
  // acc = 1/4, acc_norm = 3/4.
  const lp: Record<string, number> = { ' aa': -3, ' bbbbbb': -4, ' cc': -6, ' d': -1, ' eeee': -2, ' ff': -1.5, ' g': -1, ' h': -1 };
  const rows = [
    { ctx: 'one', endings: ['aa', 'bbbbbb'], label: 1 },
    { ctx: 'two', endings: ['cc', 'd'], label: 1 },
    { ctx: 'three', endings: ['eeee', 'ff'], label: 0 },
    { ctx: 'four', endings: ['g', 'h'], label: 1 },
  ];
  const t = tempFiles({
    'd.jsonl': rows.map((r) => JSON.stringify(r)).join('\n'),
    't.yaml': 'name: hs\nsource: {format: hellaswag_jsonl, path: d.jsonl}\nprompt: {template: "{{question}}", continuation: " {{choice}}"}\nscoring: {mode: loglikelihood}\nmetrics: [acc, acc_norm]\n',
  });
  try {
    const model = new FakeModel({ loglik: (_c, cont) => lp[cont]! });
    const r = await evaluateTask(loadTask(t.path('t.yaml')), model, { quiet: true });
    assert.deepEqual(r.metrics.map((m) => [m.name, m.score]), [['acc', 0.25], ['acc_norm', 0.75]]);
    assert.deepEqual(model.loglikCalls.slice(0, 2), [{ context: 'one', continuation: ' aa' }, { context: 'one', continuation: ' bbbbbb' }]);
    assert.deepEqual(r.outcomes.map((o) => o.chosen), [0, 1, 1, 0]);
    close(r.outcomes[0]!.confidence!, Math.exp(-3) / (Math.exp(-3) + Math.exp(-4)));
    close(r.outcomes[3]!.confidence!, 0.5);
    // Bootstrap stderr of a mean of [0,1,0,0]: sqrt(p(1-p)/n) = sqrt(0.1875/4) ≈ 0.2165.
    assert.ok(Math.abs(r.metrics[0]!.stderr - Math.sqrt(0.1875 / 4)) < 0.03, `stderr ${r.metrics[0]!.stderr}`);
    // Seeded: the same run gives the same stderr.
    const again = await evaluateTask(loadTask(t.path('t.yaml')), model, { quiet: true });
    assert.equal(again.metrics[0]!.stderr, r.metrics[0]!.stderr);
  } finally { t.cleanup(); }
});

test('generate mode: numeric extraction on arithmetic with few-shot examples from a separate split', async () => {
  const t = tempFiles({
    't.yaml': [
      'name: arith', 'source: {format: arithmetic, n: 40, seed: 11, digits: 2, ops: ["+"]}',
      'prompt: {template: "{{question}}", fewshot_target: "{{answer}}", separator: "\\n"}',
      'scoring: {mode: generate, max_tokens: 8, stop: ["\\n"], extract: {kind: numeric, tolerance: 0}}',
      'fewshot: {k: 2, seed: 5, source: {format: arithmetic, n: 30, seed: 12, digits: 2, ops: ["+"]}}',
    ].join('\n'),
  });
  try {
    // The fake adds correctly unless the first operand is odd, then it is off by one.
    const model = new FakeModel({
      generate: (req) => {
        const last = req.prompt!.split('\n').pop()!;
        const [a, b] = last.replace('=', '').split('+').map(Number) as [number, number];
        return ` ${a % 2 === 1 ? a + b + 1 : a + b}\n`;
      },
    });
    const r = await evaluateTask(loadTask(t.path('t.yaml')), model, { quiet: true });
    const items = generateArithmetic({ n: 40, seed: 11, digits: 2, ops: ['+'] });
    const expected = items.filter((it) => Number(it.fields.a) % 2 === 0).length / 40;
    assert.equal(r.metrics[0]!.score, expected);
    assert.ok(expected > 0 && expected < 1);
    // Few-shot: two solved examples from the other split precede the question; greedy, seeded.
    const pool = generateArithmetic({ n: 30, seed: 12, digits: 2, ops: ['+'] });
    const [i0, i1] = fewshotIndices(30, 2, 5, 0);
    assert.equal(model.generateCalls[0]!.prompt, `${pool[i0!]!.question}${pool[i0!]!.answer}\n${pool[i1!]!.question}${pool[i1!]!.answer}\n${items[0]!.question}`);
    assert.equal(model.generateCalls[0]!.temperature, 0);
    assert.deepEqual(model.generateCalls[0]!.stop, ['\n']);
    assert.notDeepEqual(fewshotIndices(30, 2, 5, 0), fewshotIndices(30, 2, 6, 0));
  } finally { t.cleanup(); }
});

test('generate mode: exact and regex extraction', async () => {
  const t = tempFiles({
    'qa.jsonl': ['{"prompt": "capital of France?", "answer": "Paris"}', '{"prompt": "opposite of hot?", "answer": "cold"}', '{"prompt": "2+2?", "answer": "4"}'].join('\n'),
    'exact.yaml': 'name: qa\nsource: {format: prompt_answer_jsonl, path: qa.jsonl}\nprompt: {template: "Q: {{question}}\\nA:"}\nscoring: {mode: generate, extract: {kind: exact}}\n',
    'regex.yaml': 'name: qa2\nsource: {format: prompt_answer_jsonl, path: qa.jsonl}\nscoring: {mode: generate, extract: {kind: regex, pattern: "ANSWER: (\\\\w+)"}}\n',
  });
  try {
    const answers: Record<string, string> = { 'capital of France?': '  paris.\nmore text', 'opposite of hot?': 'warm', '2+2?': '4' };
    const exact = new FakeModel({ generate: (r) => answers[r.prompt!.slice(3, r.prompt!.indexOf('\n'))]! });
    const r1 = await evaluateTask(loadTask(t.path('exact.yaml')), exact, { quiet: true });
    assert.deepEqual(r1.outcomes.map((o) => o.correct), [1, 0, 1]); // "paris." normalises to "paris"
    const rx: Record<string, string> = { 'capital of France?': 'I think ANSWER: Paris', 'opposite of hot?': 'cold', '2+2?': 'ANSWER: 5' };
    const regex = new FakeModel({ generate: (r) => rx[r.prompt!.replace('\nAnswer:', '')]! });
    const r2 = await evaluateTask(loadTask(t.path('regex.yaml')), regex, { quiet: true });
    assert.deepEqual(r2.outcomes.map((o) => [o.correct, o.prediction]), [[1, 'Paris'], [0, null], [0, '5']]);
  } finally { t.cleanup(); }
});

test('cot mode: explanation at temperature 0.3, then letter extraction; exam percentile by interpolation', async () => {
  const csv = ['Q1?,a,b,c,d,B', 'Q2?,a,b,c,d,A', 'Q3?,a,b,c,d,D', 'Q4?,a,b,c,d,C', 'Q5?,a,b,c,d,A'].join('\n');
  const t = tempFiles({
    'exam_test.csv': csv,
    't.yaml': [
      'name: exam', 'source: {format: mmlu_csv, path: exam_test.csv}', 'prompt: {template: "{{question}}\\n{{choices}}\\nAnswer:"}',
      'scoring: {mode: cot, extract: {kind: letter}}', 'metrics: [percentile, acc]',
      'exam: {raw: percent, table: [{raw: 0, percentile: 1}, {raw: 50, percentile: 30}, {raw: 75, percentile: 70}, {raw: 100, percentile: 99}]}',
    ].join('\n'),
    't2.yaml': [
      'name: exam2', 'source: {format: mmlu_csv, path: exam_test.csv}',
      'scoring: {mode: cot, extract: {kind: letter}, max_tokens: 4, cot: {answer_prompt: "\\nSo the answer is"}}',
    ].join('\n'),
  });
  try {
    // Right on Q1, Q2, Q4 (3 of 5 = 60%); on Q3 it says C, on Q5 it gives no letter.
    const said: Record<string, string> = { Q1: 'The answer is (B).', Q2: 'A is a fact, so the answer is A', Q3: 'Hmm. Answer: C', Q4: 'B looks wrong. The answer is C.', Q5: 'no idea' };
    const model = new FakeModel({ generate: (r) => said[r.prompt!.slice(0, 2)]! });
    const r = await evaluateTask(loadTask(t.path('t.yaml')), model, { quiet: true });
    assert.deepEqual(r.outcomes.map((o) => o.prediction), ['B', 'A', 'C', 'C', null]);
    const acc = r.metrics.find((m) => m.name === 'acc')!;
    assert.equal(acc.score, 0.6);
    // 60 lies between 50 (30th) and 75 (70th): 30 + (10 / 25) * 40 = 46.
    close(r.metrics[0]!.score, 46);
    assert.equal(toPercentile(-5, [{ raw: 0, percentile: 1 }, { raw: 10, percentile: 9 }]), 1);
    assert.equal(toPercentile(50, [{ raw: 0, percentile: 1 }, { raw: 10, percentile: 9 }]), 9);
    assert.ok(model.generateCalls.every((c) => c.temperature === 0.3 && c.maxTokens === 256 && c.prompt!.endsWith("Answer: Let's think step by step.")));
    assert.deepEqual(model.generateCalls.map((c) => c.seed), [0, 1, 2, 3, 4]);
    // With an answer prompt: a second, greedy call continues prompt + explanation + answer prompt.
    const two = new FakeModel({ generate: (r) => (r.temperature === 0.3 ? 'thinking about it' : r.prompt!.startsWith('Q1') ? ' B' : ' A') });
    const r2 = await evaluateTask(loadTask(t.path('t2.yaml')), two, { quiet: true });
    assert.deepEqual(r2.outcomes.map((o) => o.correct), [1, 1, 0, 0, 1]);
    const second = two.generateCalls.filter((c) => c.temperature === 0);
    assert.equal(second.length, 5);
    assert.ok(second[0]!.prompt!.endsWith("Answer: Let's think step by step.thinking about it\nSo the answer is"));
    assert.equal(second[0]!.maxTokens, 4);
  } finally { t.cleanup(); }
});

test('a loglikelihood task refuses a model without logprobs', async () => {
  const t = tempFiles({ 'd.csv': 'Q?,a,b,A\n', 't.yaml': 'name: x\nsource: {format: mmlu_csv, path: d.csv}\nscoring: {mode: loglikelihood}\n' });
  try {
    await assert.rejects(evaluateTask(loadTask(t.path('t.yaml')), new FakeModel({ generate: () => '' }), { quiet: true }), /cannot score text/);
  } finally { t.cleanup(); }
});
