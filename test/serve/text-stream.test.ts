import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TextStream } from '../../src/serve/text-stream.ts';
import { FakeCodec } from './fake-model.ts';

const codec = new FakeCodec();
const push = (s: TextStream, text: string) => codec.encode(text).map((t) => s.push(t));

test('a character split over byte tokens is released whole', () => {
  const s = new TextStream(codec);
  const ids = codec.encode('café!');
  assert.equal(ids.length, 6, 'é is two byte tokens');
  const deltas = ids.map((t) => s.push(t).delta);
  assert.deepEqual(deltas, ['c', 'a', 'f', '', 'é', '!']);
  assert.equal(s.output, 'café!');
});

test('text that may start a stop string is held back until ruled out', () => {
  const s = new TextStream(codec, ['END!']);
  const d = push(s, 'abEN');
  assert.deepEqual(d.map((x) => x.delta), ['a', 'b', '', '']);
  assert.deepEqual(s.push(codec.encode('x')[0]!), { delta: 'ENx', stopped: false }, 'ruled out: released');
  const e = push(s, 'yEND!zz');
  const stopAt = e.findIndex((x) => x.stopped);
  assert.equal(e.slice(0, stopAt + 1).map((x) => x.delta).join(''), 'y');
  assert.equal(s.output, 'abENxy');
  assert.deepEqual(s.push(1), { delta: '', stopped: true }, 'nothing after a stop');
});

test('stop strings inside one multi-character token, and the earliest of several', () => {
  const s = new TextStream(codec, ['at', ' world']);
  const r = push(s, 'Hello world cat');
  assert.ok(r.some((x) => x.stopped));
  assert.equal(s.output, 'Hello');
  const t = new TextStream(codec, ['ca', 'the']);
  push(t, ' the cat');
  assert.equal(t.output, ' ');
});

test('finish releases held text unless it completes a stop string', () => {
  const s = new TextStream(codec, ['STOP']);
  push(s, 'go ST');
  assert.equal(s.output, 'go ');
  assert.deepEqual(s.finish(), { delta: 'ST', stopped: false });
  assert.equal(s.output, 'go ST');
  const u = new TextStream(codec);
  u.push(codec.encode('é')[0]!);
  assert.equal(u.finish().delta, '\uFFFD', 'an unfinished character at the end is shown as U+FFFD');
});
