import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConversations, parsePreferences, messageText } from '../../src/align/loaders.ts';
import { parseJsonl, toJsonl } from '../../src/align/jsonl.ts';

const j = (...lines: unknown[]) => lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n');

test('conversations: strings, OpenAI content parts, image placeholders, developer role', () => {
  const text = '\ufeff' + j(
    { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }], id: 7 },
    '',
    { messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in ' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } }, { type: 'text', text: '?' }] }, { role: 'assistant', content: 'A cat.' }] },
    { messages: [{ role: 'developer', content: 'Sys' }, { role: 'user', content: [{ type: 'image' }, { type: 'image_url', image_url: 'b.png' }, { type: 'image' }] }, { role: 'assistant', content: [{ type: 'text', text: 'Two dogs.' }] }], images: ['a.png', 'c.png'] },
  ) + '\r\n';
  const convs = parseConversations(text, 'c.jsonl');
  assert.equal(convs.length, 3);
  assert.deepEqual([convs[0]!.line, convs[1]!.line, convs[2]!.line], [1, 3, 4]);
  assert.deepEqual(convs[0]!.extra, { id: 7 });
  assert.equal(messageText(convs[1]!.messages[0]!), 'What is in <|image|>?');
  assert.deepEqual(convs[1]!.messages[0]!.content[1], { type: 'image', url: 'data:image/png;base64,AAAA', detail: 'low' });
  assert.equal(convs[2]!.messages[0]!.role, 'system');
  assert.deepEqual(convs[2]!.messages[1]!.content.map((p) => (p.type === 'image' ? p.url : '')), ['a.png', 'b.png', 'c.png']);
});

test('conversations: malformed lines name file, line and problem', () => {
  const cases: [string, RegExp][] = [
    ['{"messages": [', /f\.jsonl:2: not valid JSON/],
    [JSON.stringify({ msgs: [] }), /f\.jsonl:2: not a conversation .*messages/],
    [JSON.stringify({ messages: [{ role: 'tool', content: 'x' }, { role: 'assistant', content: 'y' }] }), /f\.jsonl:2: messages\[0\]: role must be system, user or assistant/],
    [JSON.stringify({ messages: [{ role: 'user', content: 'only a question' }] }), /f\.jsonl:2: conversation has no assistant message/],
    [JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'audio', data: 'x' }] }, { role: 'assistant', content: 'y' }] }), /f\.jsonl:2: not a conversation/],
    [JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'image' }] }, { role: 'assistant', content: 'y' }] }), /f\.jsonl:2: messages\[0\]: content\[0\]: \{"type":"image"\} placeholder #1 has no matching entry/],
    [JSON.stringify({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }], images: ['a.png'] }), /f\.jsonl:2: "images" lists 1 image\(s\) but 0/],
    [JSON.stringify({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: [{ type: 'image_url', image_url: 'a.png' }] }] }), /images are only allowed in user messages/],
    [JSON.stringify({ messages: [] }), /f\.jsonl:2: not a conversation/],
  ];
  const ok = JSON.stringify({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] });
  for (const [line, re] of cases) assert.throws(() => parseConversations(`${ok}\n${line}\n`, 'f.jsonl'), re, line);
});

test('preferences: string prompt, message prompt with repeated prefix, implicit prompt', () => {
  const convo = [{ role: 'user', content: 'Q?' }];
  const prefs = parsePreferences(j(
    { prompt: 'Q?', chosen: 'good', rejected: 'bad', meta: { pair: 'x' } },
    { prompt: convo, chosen: [...convo, { role: 'assistant', content: 'good' }], rejected: [{ role: 'assistant', content: 'bad' }] },
    { chosen: [...convo, { role: 'assistant', content: 'good' }], rejected: [...convo, { role: 'assistant', content: 'bad' }] },
  ), 'p.jsonl');
  for (const p of prefs) {
    assert.deepEqual(p.prompt.map((m) => [m.role, messageText(m)]), [['user', 'Q?']]);
    assert.deepEqual(p.chosen.map((m) => [m.role, messageText(m)]), [['assistant', 'good']]);
    assert.deepEqual(p.rejected.map((m) => [m.role, messageText(m)]), [['assistant', 'bad']]);
  }
  assert.deepEqual(prefs[0]!.extra, { meta: { pair: 'x' } });
});

test('preferences: malformed lines name file, line and problem', () => {
  const cases: [unknown, RegExp][] = [
    [{ prompt: 'Q', chosen: 'a' }, /p\.jsonl:1: not a preference pair .*rejected/],
    [{ prompt: 'Q', chosen: 1, rejected: 'b' }, /p\.jsonl:1: not a preference pair .*chosen/],
    [{ chosen: 'a', rejected: 'b' }, /p\.jsonl:1: without a "prompt", "chosen" and "rejected" must be message lists/],
    [{ chosen: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'a' }], rejected: [{ role: 'user', content: 'y' }, { role: 'assistant', content: 'b' }] }, /first messages differ/],
    [{ prompt: 'Q', chosen: [{ role: 'user', content: 'huh' }], rejected: 'b' }, /chosen must continue the prompt with assistant messages only, found role 'user'/],
    [{ chosen: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'a' }], rejected: [{ role: 'user', content: 'x' }] }, /rejected has no messages after the prompt/],
  ];
  for (const [v, re] of cases) assert.throws(() => parsePreferences(JSON.stringify(v), 'p.jsonl'), re, JSON.stringify(v));
});

test('jsonl round trip', () => {
  const vals = [{ a: 1 }, 'x', [1, 2], null];
  assert.deepEqual(parseJsonl(toJsonl(vals), 's').map((l) => l.value), vals);
  assert.equal(toJsonl([]), '');
});
