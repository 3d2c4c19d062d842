/**
 * `lumen chat` prompt building: images before or after the question as the model was trained,
 * images at `<image>` tags, and a tag/image count mismatch refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chatParts } from '../../src/cli/commands/chat.ts';
import { trainedImagePlacement } from '../../src/models/multimodal.ts';
import { InputError } from '../../src/util/errors.ts';

const img = (v: number) => new Float32Array([v]);
const kinds = (parts: ReturnType<typeof chatParts>) => parts.map((p) => (p.type === 'text' ? `t:${p.text}` : `i:${p.pixels[0]}`));

test('chatParts: without tags, images go first or last as the model was trained; tags place them', () => {
  assert.deepEqual(kinds(chatParts('what color?', [img(1), img(2)])), ['i:1', 'i:2', 't:what color?']);
  assert.deepEqual(kinds(chatParts('what color?', [img(1), img(2)], 'last')), ['t:what color?', 'i:1', 'i:2']);
  assert.deepEqual(kinds(chatParts('compare <image> with <image>.', [img(1), img(2)], 'last')), ['t:compare ', 'i:1', 't: with ', 'i:2', 't:.']);
  assert.deepEqual(kinds(chatParts('', [img(3)], 'last')), ['i:3']);
  assert.throws(() => chatParts('one <image> tag', [img(1), img(2)]), (e: unknown) => e instanceof InputError && /1 <image> tag\(s\) but 2/.test(e.message));
});

test('trainedImagePlacement: read from the training record; mixed and unknown count as first', () => {
  assert.equal(trainedImagePlacement({ train: { imagePlacement: 'last' } }), 'last');
  assert.equal(trainedImagePlacement({ train: { imagePlacement: 'first' } }), 'first');
  assert.equal(trainedImagePlacement({ train: { imagePlacement: 'mixed' } }), 'first');
  assert.equal(trainedImagePlacement({}), 'first');
});
