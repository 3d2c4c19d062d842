/** `lumen tokenizer train|encode|decode` end to end, as a user runs them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getEncoding } from 'js-tiktoken';
import { sourceText } from './mixed-text.ts';
import { InputError } from '../../src/util/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'lumen-tok-cli-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function lumen(args: string[], input?: string | Buffer): { code: number; out: Buffer; err: string } {
  const r = spawnSync(process.execPath, ['bin/lumen.mjs', 'tokenizer', ...args], { input, env: { ...process.env, LUMEN_QUIET: '1' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr.toString() };
}

test('train -> encode --file -> decode reproduces the file byte for byte', () => {
  const corpus = join(dir, 'corpus.txt');
  writeFileSync(corpus, sourceText(60_000) + '\nünïcödé 東京 👍🏽\n');
  const out = join(dir, 'tok');
  const t = lumen(['train', '--input', join(dir, '*.txt'), '--vocab-size', '600', '--out', out]);
  assert.equal(t.code, 0, t.err);
  assert.ok(existsSync(join(out, 'tokenizer.json')));
  const e = lumen(['encode', '--tokenizer', out, '--file', corpus]);
  assert.equal(e.code, 0, e.err);
  const ids = JSON.parse(e.out.toString()) as number[];
  assert.ok(ids.length > 1000 && ids.every((x) => Number.isInteger(x) && x < 600));
  const idsFile = join(dir, 'ids.json');
  writeFileSync(idsFile, e.out);
  const d = lumen(['decode', '--tokenizer', out, '--file', idsFile]);
  assert.equal(d.code, 0, d.err);
  assert.deepEqual(d.out, readFileSync(corpus));
});

test('encode --encoding cl100k_base from stdin matches js-tiktoken; decode from stdin', () => {
  const text = "Hello, world! It's 2024 — déjà vu 🤖\n\n  indented <|endoftext|>";
  const e = lumen(['encode', '--encoding', 'cl100k_base'], text);
  assert.equal(e.code, 0, e.err);
  assert.deepEqual(JSON.parse(e.out.toString()), getEncoding('cl100k_base').encode(text, [], []));
  const d = lumen(['decode', '--encoding', 'cl100k_base'], e.out);
  assert.equal(d.out.toString(), text);
});

test('bad input through the real binary: exit code 1, message on stderr, nothing on stdout, no output dir', () => {
  writeFileSync(join(dir, 'empty.txt'), '');
  const d = lumen(['decode', '--encoding', 'cl100k_base'], '[1, 2,');
  assert.equal(d.code, 1);
  assert.match(d.err, /stdin: expected one JSON array of token ids, got invalid JSON/);
  assert.equal(d.out.length, 0);
  const t = lumen(['train', '--input', join(dir, 'empty.txt'), '--vocab-size', '300', '--out', join(dir, 'o1')]);
  assert.equal(t.code, 1);
  assert.match(t.err, /corpus is empty/);
  assert.equal(existsSync(join(dir, 'o1')), false);
});

test('bad input: each case is an InputError naming the problem (in process)', async () => {
  const { run } = await import('../../src/cli/commands/tokenizer.ts');
  const file = (name: string, text: string): string => { const p = join(dir, name); writeFileSync(p, text); return p; };
  writeFileSync(join(dir, 'empty.txt'), '');
  const cases: Array<[string[], RegExp]> = [
    [['decode', '--encoding', 'cl100k_base', '--file', file('obj.json', '{"a":1}')], /obj\.json: expected a JSON array/],
    [['decode', '--encoding', 'cl100k_base', '--file', file('str.json', '[1, "x"]')], /element 1 is "x"/],
    [['decode', '--encoding', 'cl100k_base', '--file', file('big.json', '[1, 999999]')], /token id 999999 at index 1/],
    [['encode', '--encoding', 'gpt9', '--file', file('x.txt', 'x')], /--encoding: expected one of cl100k_base, o200k_base/],
    [['encode', '--encoding', 'cl100k_base', '--tokenizer', dir, '--file', file('y.txt', 'x')], /exactly one of --tokenizer/],
    [['encode', '--encoding', 'cl100k_base', '--file', join(dir, 'nope')], /nope: cannot read \(ENOENT\)/],
    [['encode', '--tokenizer', join(dir, 'no-such-dir'), '--file', file('z.txt', 'x')], /no-such-dir\/tokenizer\.json: cannot read the tokenizer/],
    [['train', '--input', join(dir, '*.nothing'), '--vocab-size', '300', '--out', join(dir, 'o2')], /matches no file/],
    [['train', '--input', join(dir, 'empty.txt'), '--vocab-size', '100', '--out', join(dir, 'o3')], /expected an integer >= 263/],
    [['train', '--input', join(dir, 'empty.txt'), '--vocab-size', 'lots', '--out', join(dir, 'o4')], /--vocab-size: expected an integer, got 'lots'/],
    [['train', '--vocab-size', '300', '--out', join(dir, 'o5')], /--input: expected at least one/],
    [['frobnicate'], /unknown subcommand 'frobnicate'/],
  ];
  for (const [args, re] of cases) await assert.rejects(run(args), (e: Error) => e instanceof InputError && re.test(e.message), args.join(' '));
  for (const o of ['o2', 'o3', 'o4', 'o5']) assert.equal(existsSync(join(dir, o)), false, `${o} not created`);
});
