/**
 * tokenizer.json interop with @huggingface/tokenizers (the HF JS library): a file written by
 * Lumen loads there and gives identical ids; cl100k saved as tokenizer.json still matches
 * js-tiktoken; corrupt rank files and tokenizer.json files give InputError naming the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { getEncoding } from 'js-tiktoken';
import { Tokenizer, trainBpe, BYTE_TO_CHAR, toTokenizerJson } from '../../src/tokenizer/index.ts';
import { parseTiktokenRanks, tiktokenRankPath } from '../../src/tokenizer/tiktoken.ts';
import { InputError } from '../../src/util/errors.ts';
import { mixedText, sourceText } from './mixed-text.ts';

const dir = mkdtempSync(join(tmpdir(), 'lumen-tok-hf-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function hfIds(file: string, text: string): number[] {
  const hf = new HfTokenizer(JSON.parse(readFileSync(file, 'utf8')), {});
  return hf.encode(text, { add_special_tokens: false } as never).ids as number[];
}

test('byte-to-unicode map: 256 distinct characters, printable Latin-1 bytes map to themselves', () => {
  assert.equal(new Set(BYTE_TO_CHAR).size, 256);
  assert.equal(BYTE_TO_CHAR[0x41], 'A');
  assert.equal(BYTE_TO_CHAR[0x20], '\u0120'); // the familiar 'Ġ'
  assert.equal(BYTE_TO_CHAR[0x0a], '\u010a'); // 'Ċ'
});

test('cl100k_base saved as tokenizer.json: HF tokenizers, Lumen and js-tiktoken give identical ids', () => {
  const tok = Tokenizer.fromTiktoken('cl100k_base');
  const file = tok.save(join(dir, 'cl100k'));
  assert.deepEqual(readdirSync(join(dir, 'cl100k')), ['tokenizer.json'], 'no temporary file left behind');
  const text = mixedText(300_000, 21).replaceAll('<|endoftext|>', '<|endoftext');
  const ours = tok.encode(text);
  const back = Tokenizer.load(join(dir, 'cl100k'));
  assert.deepEqual(back.encode(text), ours);
  assert.deepEqual(hfIds(file, text), ours);
  assert.deepEqual(getEncoding('cl100k_base').encode(text, [], []), ours);
  assert.equal(back.specialTokenId('<|pad|>'), tok.specialTokenId('<|pad|>'));
});

test('a Lumen-trained tokenizer loads in HF tokenizers with identical ids and decodes the same', async () => {
  const src = join(dir, 'corpus.txt');
  writeFileSync(src, sourceText(200_000));
  const tok = await trainBpe({ inputs: [src], vocabSize: 2000, progress: false });
  const file = tok.save(join(dir, 'trained'));
  const text = mixedText(100_000, 4).replaceAll('<|endoftext|>', '');
  const ids = tok.encode(text);
  assert.deepEqual(hfIds(file, text), ids);
  const hf = new HfTokenizer(JSON.parse(readFileSync(file, 'utf8')), {});
  assert.equal(hf.decode(ids.slice(0, 500)), tok.decode(ids.slice(0, 500)));
  // Special tokens: HF always splits on added tokens; Lumen does when allowed.
  const withSpecial = 'hello<|user|>world<|end|>';
  assert.deepEqual(hfIds(file, withSpecial), tok.encode(withSpecial, { allowedSpecial: 'all' }));
});

test('reads GPT-2-style files too: ByteLevel pre-tokenizer with its own regex, "a b" merge strings, a special in the vocab', async () => {
  const src = join(dir, 'gpt2ish.txt');
  writeFileSync(src, sourceText(50_000));
  const tok = await trainBpe({ inputs: [src], vocabSize: 600, pattern: 'cl100k', progress: false });
  const j = JSON.parse(JSON.stringify(toTokenizerJson(tok)));
  j.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  j.model.merges = j.model.merges.map((m: string[]) => m.join(' '));
  j.model.vocab['<|endoftext|>'] = tok.specialTokenId('<|endoftext|>');
  const d = join(dir, 'gpt2ish');
  mkdirSync(d);
  const file = join(d, 'tokenizer.json');
  writeFileSync(file, JSON.stringify(j));
  const back = Tokenizer.load(d);
  const text = "It's 12345 o'clock!  Ünïcode\n\n\tend " + sourceText(20_000);
  assert.deepEqual(back.encode(text), hfIds(file, text));
  assert.equal(back.decode(back.encode(text)), text);
});

test('corrupt or truncated rank files: InputError naming the file', () => {
  const path = tiktokenRankPath('cl100k_base');
  const good = readFileSync(path, 'utf8');
  assert.throws(() => parseTiktokenRanks(good.slice(0, good.length / 2), 'x/cl100k_base.js'), (e: Error) => e instanceof InputError && /x\/cl100k_base\.js: .*corrupt or truncated/.test(e.message));
  assert.throws(() => parseTiktokenRanks(good.replace(' IQ== ', ' I*Q= '), 'f.js'), /f\.js: bpe_ranks line 1, rank 0: 'I\*Q=' is not base64/);
  assert.throws(() => parseTiktokenRanks('export default {"pat_str":"x","special_tokens":{},"bpe_ranks":"! 0 IQ=="}', 'short.js'), /short\.js: expected at least 256 ranks, found 1; the file is truncated/);
  assert.throws(() => parseTiktokenRanks('nothing here', 'empty.js'), /empty\.js: expected a module/);
  assert.throws(() => parseTiktokenRanks('export default {"bpe_ranks": 3}', 'bad.js'), /bad\.js: expected fields/);
  assert.throws(() => Tokenizer.fromTiktoken('p50k_base' as never), /expected one of cl100k_base, o200k_base/);
});

test('corrupt tokenizer.json files: InputError naming the file and the problem, nothing half-loaded', async () => {
  const src = join(dir, 'small.txt');
  writeFileSync(src, sourceText(30_000));
  const tok = await trainBpe({ inputs: [src], vocabSize: 400, progress: false });
  const good = JSON.parse(readFileSync(tok.save(join(dir, 'small')), 'utf8'));
  const cases: Array<[string, (j: any) => unknown, RegExp]> = [
    ['truncated', () => null, /not valid JSON .*corrupt or truncated/],
    ['wrong model', (j) => { j.model.type = 'WordPiece'; return j; }, /model\.type: expected "BPE", got "WordPiece"/],
    ['no vocab', (j) => { delete j.model.vocab; return j; }, /model\.vocab: expected an object/],
    ['bad merge', (j) => { j.model.merges[3] = ['Ġzz', 'qq']; return j; }, /model\.merges\[3\]: "Ġzz" is not in model\.vocab/],
    ['bad vocab char', (j) => { j.model.vocab['日本'] = 5000; return j; }, /outside the byte-level alphabet/],
    ['missing byte', (j) => { const k = Object.keys(j.model.vocab).find((s) => j.model.vocab[s] === 65)!; delete j.model.vocab[k]; j.model.merges = j.model.merges.filter((m: string[]) => !m.includes('A') && !m.join('').includes('A')); return j; }, /no token for the single byte 0x41/],
    ['normalizer', (j) => { j.normalizer = { type: 'NFC' }; return j; }, /normalizer: only null is supported, got type "NFC"/],
    ['pre-tokenizer', (j) => { j.pre_tokenizer = { type: 'Whitespace' }; return j; }, /pre_tokenizer\.type: expected "ByteLevel" or "Sequence"/],
    ['bad regex', (j) => { j.pre_tokenizer.pretokenizers[0].pattern.Regex = '(unclosed'; return j; }, /not a valid JavaScript regular expression/],
    ['bad special', (j) => { j.added_tokens[0].id = 'x'; return j; }, /added_tokens\[0\]: expected/],
  ];
  for (const [name, mutate, re] of cases) {
    const d = join(dir, `bad-${name.replace(/ /g, '-')}`);
    const file = join(d, 'tokenizer.json');
    const text = JSON.stringify(good);
    const m = mutate(JSON.parse(text));
    mkdirSync(d);
    writeFileSync(file, m === null ? text.slice(0, text.length / 3) : JSON.stringify(m));
    assert.throws(() => Tokenizer.load(d), (e: Error) => e instanceof InputError && e.message.startsWith(file) && re.test(e.message), name);
  }
  assert.throws(() => Tokenizer.load(join(dir, 'missing')), /missing\/tokenizer\.json: cannot read the tokenizer \(ENOENT\)/);
  assert.equal(existsSync(join(dir, 'missing')), false);
});
