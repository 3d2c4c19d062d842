/** `lumen tokenizer train|encode|decode` end to end, as a user runs them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getEncoding } from 'js-tiktoken';
import { sourceText } from './mixed-text.ts';

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

test('bad input: clear errors, non-zero exit, no output', () => {
  const cases: Array<[string[], string | undefined, RegExp]> = [
    [['decode', '--encoding', 'cl100k_base'], '[1, 2,', /stdin: expected one JSON array of token ids, got invalid JSON/],
    [['decode', '--encoding', 'cl100k_base'], '{"a":1}', /expected a JSON array/],
    [['decode', '--encoding', 'cl100k_base'], '[1, "x"]', /element 1 is "x"/],
    [['decode', '--encoding', 'cl100k_base'], '[1, 999999]', /token id 999999 at index 1/],
    [['encode', '--encoding', 'gpt9'], 'x', /--encoding: expected one of cl100k_base, o200k_base/],
    [['encode', '--encoding', 'cl100k_base', '--tokenizer', dir], 'x', /exactly one of --tokenizer/],
    [['encode', '--encoding', 'cl100k_base', '--file', join(dir, 'nope')], undefined, /nope: cannot read \(ENOENT\)/],
    [['train', '--input', join(dir, 'empty.txt'), '--vocab-size', '300', '--out', join(dir, 'o1')], undefined, /corpus is empty/],
    [['train', '--input', join(dir, '*.nothing'), '--vocab-size', '300', '--out', join(dir, 'o2')], undefined, /matches no file/],
    [['train', '--input', join(dir, 'empty.txt'), '--vocab-size', '100', '--out', join(dir, 'o3')], undefined, /expected an integer >= 263/],
    [['frobnicate'], undefined, /unknown subcommand 'frobnicate'/],
  ];
  writeFileSync(join(dir, 'empty.txt'), '');
  for (const [args, input, re] of cases) {
    const r = lumen(args, input ?? '');
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.err, re, args.join(' '));
    assert.equal(r.out.length, 0, `no stdout for ${args.join(' ')}`);
  }
  for (const o of ['o1', 'o2', 'o3']) assert.equal(existsSync(join(dir, o)), false, `${o} not created`);
});
