import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { tempFiles } from './helpers.ts';
import { startStub } from './stub-server.ts';
import { run } from '../../src/cli/commands/eval.ts';

const CSV = ['Q1 prefer B,w,x,y,z,B', 'Q2 prefer A,w,x,y,z,A', 'Q3 prefer D,w,x,y,z,C', 'Q4 prefer C,w,x,y,z,C'].join('\n');

test('lumen eval against an endpoint writes report.md, eval.json and the calibration plot', async () => {
  const stub = await startStub({ reply: (text) => (text.includes('capital') ? 'Paris' : 'no idea') });
  const t = tempFiles({
    'mc.csv': CSV,
    'mc.yaml': 'name: mc\nsource: {format: mmlu_csv, path: mc.csv}\nprompt: {template: "{{question}}\\n{{choices}}\\nAnswer:", continuation: " {{label}}"}\nscoring: {mode: loglikelihood}\nmetrics: [acc, acc_norm]\n',
    'qa.jsonl': '{"prompt": "The capital of France?", "answer": "Paris"}\n{"prompt": "Opposite of up?", "answer": "down"}\n',
    'qa.yaml': 'name: qa\nsource: {format: prompt_answer_jsonl, path: qa.jsonl}\nscoring: {mode: generate, extract: {kind: exact}}\n',
    // The training text contains Q1's question and choices (normalised: "q1preferbwxyz").
    'train/a.txt': 'Some text. Q1 prefer B: w, x, y, z! More text.',
  });
  const log = console.log;
  const printed: string[] = [];
  console.log = (...a: unknown[]) => { printed.push(a.join(' ')); };
  try {
    const out = t.path('out');
    const code = await run(['--endpoint', stub.url, '--endpoint-mode', 'completions', '--tasks', `${t.path('mc.yaml')},${t.path('qa.yaml')}`,
      '--out', out, '--cache', t.path('cache'), '--contamination-corpus', t.path('train'), '--contamination-index', t.path('idx'), '--quiet']);
    console.log = log;
    assert.equal(code, 0);
    const json = JSON.parse(readFileSync(`${out}/eval.json`, 'utf8'));
    assert.deepEqual(Object.keys(json), ['tasks', 'calibration']);
    assert.deepEqual(Object.keys(json.tasks.mc), ['metric', 'score', 'stderr', 'n', 'clean_score']);
    assert.equal(json.tasks.mc.metric, 'acc');
    assert.equal(json.tasks.mc.score, 0.75);
    assert.equal(json.tasks.mc.n, 4);
    assert.equal(json.tasks.mc.clean_score, 2 / 3); // Q1 (right) is flagged; Q2, Q4 right and Q3 wrong remain
    assert.equal(json.tasks.qa.score, 0.5);
    assert.equal(json.tasks.qa.clean_score, 0.5);
    assert.equal(typeof json.calibration.ece, 'number');
    assert.deepEqual(Object.keys(json.calibration), ['ece']);
    const md = readFileSync(`${out}/report.md`, 'utf8');
    assert.match(md, /\| mc \| loglikelihood \| acc \| 75\.0% ± /);
    assert.match(md, /!\[reliability diagram\]\(calibration\.svg\)/);
    assert.match(md, /1 of 6 items \(16\.7%\) had a sampled 50-character substring/);
    assert.ok(existsSync(`${out}/calibration.svg`) && existsSync(`${out}/calibration.png`));
    assert.ok(existsSync(`${out}/items/mc.jsonl`));
    assert.ok(printed.some((l) => /^mc\s+loglikelihood\s+acc\s+75\.0%/.test(l.split('\n')[2] ?? '')), printed.join('\n'));
    // A second run is served from the cache: no HTTP requests.
    const before = stub.requests.length;
    console.log = () => {};
    await run(['--endpoint', stub.url, '--endpoint-mode', 'completions', '--tasks', t.path('mc.yaml'), '--out', out, '--cache', t.path('cache'), '--quiet']);
    console.log = log;
    assert.equal(stub.requests.length, before);
  } finally { console.log = log; t.cleanup(); await stub.close(); }
});

test('lumen eval: clear errors for bad arguments', async () => {
  await assert.rejects(run(['--endpoint', 'http://x']), /--tasks: name at least one task/);
  await assert.rejects(run(['--tasks', 'arith']), /exactly one of --model DIR or --endpoint URL/);
  await assert.rejects(run(['--endpoint', 'http://x', '--tasks', 'no-such-task']), /task 'no-such-task': no such file/);
  await assert.rejects(run(['--model', '/some/dir', '--tasks', 'tasks/arith.yaml']), /no model at \/some\/dir: not a directory/);
});
