import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempFiles } from './helpers.ts';
import { parseCsv } from '../../src/eval/formats/csv.ts';
import { loadSource, parseArcJsonl, parseGsm8kJsonl, parseHellaswagJsonl, parseMmluCsv } from '../../src/eval/formats/loaders.ts';
import { generateArithmetic } from '../../src/eval/formats/arithmetic.ts';
import { loadTask, parseTask } from '../../src/eval/task.ts';
import { evaluateTask } from '../../src/eval/scoring.ts';
import { FakeModel } from './fake-model.ts';
import { extractLetter, lastNumber } from '../../src/eval/extract.ts';

test('CSV: quoted fields with commas, doubled quotes and newlines; records know their line', () => {
  const recs = parseCsv('a,"b, c","say ""hi"""\r\n"multi\nline",x,y\n\nlast,1,2', 'f.csv');
  assert.deepEqual(recs, [
    { line: 1, fields: ['a', 'b, c', 'say "hi"'] },
    { line: 2, fields: ['multi\nline', 'x', 'y'] },
    { line: 5, fields: ['last', '1', '2'] },
  ]);
});

test('MMLU CSV, ARC (nested and flat), HellaSwag and GSM8K loaders', () => {
  const mmlu = parseMmluCsv('question,A,B,C,D,answer\n"What, if anything?",x,y,z,w,c\n', '/d/high_school_physics_test.csv');
  assert.deepEqual(mmlu[0], { id: 'high_school_physics_test.csv:2', question: 'What, if anything?', choices: ['x', 'y', 'z', 'w'], labels: ['A', 'B', 'C', 'D'], gold: 2, answer: 'z', fields: { subject: 'high school physics' } });
  const arc = parseArcJsonl([
    '{"id":"q1","question":{"stem":"S?","choices":[{"text":"t1","label":"1"},{"text":"t2","label":"2"}]},"answerKey":"2"}',
    '{"question":"F?","choices":{"text":["u","v","w"],"label":["A","B","C"]},"answerKey":"A"}',
  ].join('\n'), 'arc.jsonl');
  assert.deepEqual(arc.map((a) => [a.id, a.question, a.labels, a.gold, a.answer]), [['q1', 'S?', ['1', '2'], 1, 't2'], ['arc.jsonl:2', 'F?', ['A', 'B', 'C'], 0, 'u']]);
  const hs = parseHellaswagJsonl('{"ctx":"He","endings":["a","b","c","d"],"label":"3"}', 'hs.jsonl');
  assert.equal(hs[0]!.gold, 3);
  const g = parseGsm8kJsonl('{"question":"How many?","answer":"1,000 + 234 = 1,234\\n#### 1,234"}', 'g.jsonl');
  assert.equal(g[0]!.answer, '1234');
  const a1 = generateArithmetic({ n: 5, seed: 3, digits: 2, ops: ['+', '-', '*'] });
  assert.deepEqual(a1, generateArithmetic({ n: 5, seed: 3, digits: 2, ops: ['+', '-', '*'] }));
  for (const it of a1) {
    const { a, b, op } = it.fields as { a: string; b: string; op: string };
    assert.equal(it.question, `${a}${op}${b}=`);
    assert.equal(Number(it.answer), op === '+' ? +a + +b : op === '-' ? +a - +b : +a * +b);
  }
});

test('extraction helpers', () => {
  assert.equal(lastNumber('she pays $1,234.50 in total, not 3'), 3);
  assert.equal(lastNumber('so -12.5%'), -12.5);
  assert.equal(extractLetter('the answer is a dog, so (C)', ['A', 'B', 'C', 'D']), 'C');
  assert.equal(extractLetter('Answer: B', ['A', 'B', 'C', 'D']), 'B');
  assert.equal(extractLetter('nothing here', ['A', 'B']), null);
});

test('malformed data files: errors name the file and the line', async () => {
  assert.throws(() => parseMmluCsv('Q1,a,b,c,d,A\nQ2,a,b,c,d,E\n', 'bad.csv'), /bad\.csv:2: answer must be one of A, B, C, D, got 'E'/);
  assert.throws(() => parseMmluCsv('Q1,a,b,c,d,A\n"Q2,a,b\nstill,c,d,A\n', 'q.csv'), /q\.csv:2: unterminated quoted field/);
  assert.throws(() => parseMmluCsv('Q1,a,A\n', 'few.csv'), /few\.csv:1: expected at least 4 columns/);
  assert.throws(() => parseArcJsonl('{"question":{"stem":"S"},"answerKey":"A"}', 'a.jsonl'), /a\.jsonl:1: field 'question\.choices'/);
  assert.throws(() => parseHellaswagJsonl('{"ctx":"a","endings":["x","y"],"label":0}\n{oops}', 'h.jsonl'), /h\.jsonl:2: invalid JSON/);
  assert.throws(() => parseHellaswagJsonl('\n\n{"ctx":"a","endings":["x","y"],"label":5}', 'h.jsonl'), /h\.jsonl:3: field 'label': expected an index in \[0, 1\], got 5/);
  assert.throws(() => parseGsm8kJsonl('{"question":"q","answer":"no marker"}', 'g.jsonl'), /g\.jsonl:1: field 'answer': expected the final answer after '####'/);
  assert.throws(() => parseGsm8kJsonl('{"question":"q"}', 'g.jsonl'), /g\.jsonl:1: field 'answer': expected a string, got nothing/);
  await assert.rejects(loadSource({ format: 'arc_jsonl', path: 'missing.jsonl' }, '/nonexistent'), /missing\.jsonl' \(format arc_jsonl\) does not exist/);
});

test('malformed task files: errors name the file and the line', () => {
  assert.throws(() => parseTask('name: x\nsource: {format: mmlu_csv, path: a.csv}\nscoring:\n  mode: guess\n', 't.yaml'), /t\.yaml:4: scoring\.mode: /);
  assert.throws(() => parseTask('name: x\nsource: {format: mmlu_csv, path: a.csv\nscoring: {mode: generate}\n', 't.yaml'), /t\.yaml:\d+: not valid YAML\/JSON/);
  assert.throws(() => parseTask('name: x\nsource:\n  format: mmlu_csv\n  path: a.csv\n  colour: red\nscoring: {mode: generate}\n', 't.yaml'), /t\.yaml:5: source: .*colour/);
  assert.throws(() => parseTask('name: x\nsource: {format: arithmetic, n: 3, seed: 1}\nscoring: {mode: generate}\nfewshot:\n  k: 2\n', 't.yaml'), /t\.yaml:5: fewshot: k = 2 needs fewshot\.source/);
  assert.throws(() => parseTask('name: x\nsource: {format: arithmetic, n: 3, seed: 1}\nscoring: {mode: generate}\nmetrics: [acc_norm]\n', 't.yaml'), /t\.yaml:4: metrics: acc_norm needs scoring\.mode loglikelihood/);
  assert.throws(() => parseTask('{\n  "name": "x",\n  "source": {"format": "arithmetic", "n": 0, "seed": 1},\n  "scoring": {"mode": "generate"}\n}', 't.json'), /t\.json:3: source\.n: /);
  assert.throws(() => parseTask('name: x\nsource: {format: arithmetic, n: 3, seed: 1}\nscoring: {mode: generate}\nmetrics: [percentile]\nexam:\n  table:\n    - {raw: 10, percentile: 5}\n    - {raw: 5, percentile: 9}\n', 't.yaml'), /t\.yaml:8: exam\.table\.1: raw scores must increase/);
  assert.throws(() => parseTask('- just\n- a list\n', 'l.yaml'), /l\.yaml:1: expected a mapping/);
});

test('an unknown template placeholder names the task file', async () => {
  const t = tempFiles({ 't.yaml': 'name: x\nsource: {format: arithmetic, n: 2, seed: 1}\nprompt: {template: "{{questoin}}"}\nscoring: {mode: generate}\n' });
  try {
    await assert.rejects(evaluateTask(loadTask(t.path('t.yaml')), new FakeModel({ generate: () => '1' }), { quiet: true }), /t\.yaml: prompt\.template: unknown placeholder \{\{questoin\}\}/);
  } finally { t.cleanup(); }
});

test('every shipped task file loads and renders its first prompt', async () => {
  const { readdirSync } = await import('node:fs');
  const { loadTaskItems, buildPrompt } = await import('../../src/eval/scoring.ts');
  const files = readdirSync('tasks').filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 6);
  for (const f of files) {
    const task = loadTask(`tasks/${f}`);
    const { items, pool } = await loadTaskItems(task);
    assert.ok(items.length > 0, f);
    assert.ok(buildPrompt(task, items[0]!, 0, pool).length > 0, f);
  }
});

test('generated visual questions come from src/data/visual with PNG images', async () => {
  const spec = { format: 'visual' as const, tasks: ['color', 'count'], split: 'heldout', seed: 3, n: 4, size: 32 };
  const items = await loadSource(spec, '.');
  assert.equal(items.length, 4);
  assert.deepEqual(items.map((i) => i.fields.task), ['color', 'count', 'color', 'count']);
  for (const it of items) {
    assert.match(it.images![0]!, /^data:image\/png;base64,iVBOR/);
    assert.ok(it.question.length > 0 && it.answer.length > 0);
  }
  assert.deepEqual(await loadSource(spec, '.'), items);
  await assert.rejects(loadSource({ ...spec, tasks: ['colour'] }, '.'), /unknown visual task "colour"/);
});
