import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLlava, parseLlava } from '../../src/data/llava.ts';
import { InputError } from '../../src/util/errors.ts';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-llava-'));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

const good = [
  {
    id: '000001', image: 'coco/a.jpg',
    conversations: [
      { from: 'human', value: '<image>\nWhat is on the table?' },
      { from: 'gpt', value: 'A red cup.' },
      { from: 'human', value: 'And its colour?' },
      { from: 'gpt', value: 'Red.' },
    ],
  },
  { id: 7, conversations: [{ from: 'human', value: 'Hello' }, { from: 'gpt', value: 'Hi!' }] },
  {
    id: 'two', image: ['coco/a.jpg', 'b.png'],
    conversations: [{ from: 'human', value: 'Compare <image> with\n<image>' }, { from: 'gpt', value: 'Same.' }],
  },
];

test('valid files load into normalised conversations (JSON and JSONL)', () => {
  withDir((dir) => {
    mkdirSync(join(dir, 'imgs', 'coco'), { recursive: true });
    writeFileSync(join(dir, 'imgs', 'coco', 'a.jpg'), 'x');
    writeFileSync(join(dir, 'imgs', 'b.png'), 'x');
    writeFileSync(join(dir, 'data.json'), JSON.stringify(good));
    const convs = loadLlava(join(dir, 'data.json'), { imageDir: join(dir, 'imgs') });
    assert.equal(convs.length, 3);
    assert.deepEqual(convs[0], {
      id: '000001',
      messages: [
        { role: 'user', content: [{ type: 'image', path: join(dir, 'imgs', 'coco', 'a.jpg') }, { type: 'text', text: 'What is on the table?' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'A red cup.' }] },
        { role: 'user', content: [{ type: 'text', text: 'And its colour?' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Red.' }] },
      ],
    });
    assert.equal(convs[1]!.id, '7');
    assert.deepEqual(convs[2]!.messages[0]!.content, [
      { type: 'text', text: 'Compare' },
      { type: 'image', path: join(dir, 'imgs', 'coco', 'a.jpg') },
      { type: 'text', text: 'with' },
      { type: 'image', path: join(dir, 'imgs', 'b.png') },
    ]);
    // JSONL, with images relative to the file's own folder by default.
    mkdirSync(join(dir, 'coco'));
    writeFileSync(join(dir, 'coco', 'a.jpg'), 'x');
    writeFileSync(join(dir, 'data.jsonl'), good.slice(0, 2).map((e) => JSON.stringify(e)).join('\n') + '\n');
    const jl = loadLlava(join(dir, 'data.jsonl'));
    assert.equal(jl.length, 2);
    assert.deepEqual(jl[0]!.messages[0]!.content[0], { type: 'image', path: join(dir, 'coco', 'a.jpg') });
  });
});

test('malformed entries: each error names the file, the entry and the problem', () => {
  const turns = [{ from: 'human', value: '<image>\nQ' }, { from: 'gpt', value: 'A' }];
  const cases: [string, unknown, RegExp][] = [
    ['not an array', { a: 1 }, /f\.json: expected a JSON array of entries, found object/],
    ['entry not an object', [3], /f\.json: entry 0: expected an object/],
    ['missing image file', [{ id: 'x', image: 'nope.jpg', conversations: turns }], /entry 0 \(id "x"\): image file .*nope\.jpg does not exist/],
    ['image without tag', [{ id: 'x', image: 'a.jpg', conversations: [{ from: 'human', value: 'Q' }, { from: 'gpt', value: 'A' }] }], /entry 0 \(id "x"\): has an image but no <image> tag/],
    ['tag without image', [{ id: 'x', conversations: turns }], /has 1 <image> tag\(s\) but no "image"/],
    ['tag count mismatch', [{ id: 'x', image: ['a.jpg', 'a.jpg'], conversations: turns }], /has 2 image\(s\) but 1 <image> tag/],
    ['bad role', [{ id: 'x', conversations: [{ from: 'system', value: 'Q' }, { from: 'gpt', value: 'A' }] }], /turn 0 has role "system"; expected "human" or "gpt"/],
    ['not alternating', [{ id: 'x', conversations: [{ from: 'human', value: 'Q' }, { from: 'human', value: 'Q' }] }], /turn 1 is from "human" but turns must alternate/],
    ['starts with gpt', [{ id: 'x', conversations: [{ from: 'gpt', value: 'A' }, { from: 'human', value: 'Q' }] }], /turn 0 is from "gpt"/],
    ['ends with human', [{ id: 'x', conversations: [{ from: 'human', value: 'Q' }] }], /must end with a gpt answer/],
    ['image in gpt turn', [{ id: 'x', image: 'a.jpg', conversations: [{ from: 'human', value: 'Q' }, { from: 'gpt', value: '<image>' }] }], /turn 1 \(gpt\) contains <image>/],
    ['value not a string', [{ id: 'x', conversations: [{ from: 'human', value: 3 }, { from: 'gpt', value: 'A' }] }], /turn 0 \(human\) has no string "value"/],
    ['no conversations', [{ id: 'x' }], /"conversations" must be a non-empty list/],
    ['empty conversations', [{ id: 'x', conversations: [] }], /"conversations" must be a non-empty list/],
    ['bad image field', [{ id: 'x', image: 5, conversations: turns }], /"image" must be a non-empty path/],
    ['bad id', [{ id: {}, conversations: [{ from: 'human', value: 'Q' }, { from: 'gpt', value: 'A' }] }], /entry 0: "id" must be a string or a number/],
  ];
  withDir((dir) => {
    writeFileSync(join(dir, 'a.jpg'), 'x');
    for (const [what, data, re] of cases) {
      assert.throws(() => parseLlava(data, 'f.json', { imageDir: dir }), (e: unknown) => {
        assert.ok(e instanceof InputError, what);
        assert.match(e.message, /^LLaVA file f\.json: /, what);
        assert.match(e.message, re, what);
        return true;
      }, what);
    }
    // Several problems are reported together, with their entry indices.
    const many = [good[1], { id: 'a', conversations: [] }, good[1], { id: 'b', conversations: [{ from: 'bot', value: '' }, { from: 'gpt', value: '' }] }];
    assert.throws(() => parseLlava(many, 'f.json', { imageDir: dir }), /2 problems:\n  entry 1 \(id "a"\).*\n  entry 3 \(id "b"\): turn 0 has role "bot"/);
    // checkImages: false skips the existence check.
    assert.equal(parseLlava([{ id: 'x', image: 'nope.jpg', conversations: turns }], 'f.json', { imageDir: dir, checkImages: false }).length, 1);
    // File-level errors.
    writeFileSync(join(dir, 'bad.json'), '[{"id": 1,');
    assert.throws(() => loadLlava(join(dir, 'bad.json')), /bad\.json: not valid JSON/);
    writeFileSync(join(dir, 'bad.jsonl'), '{"id": 1, "conversations": []}\n{oops}\n');
    assert.throws(() => loadLlava(join(dir, 'bad.jsonl')), /bad\.jsonl: line 2 is not valid JSON/);
    assert.throws(() => loadLlava(join(dir, 'missing.json')), /missing\.json: cannot read/);
  });
});
