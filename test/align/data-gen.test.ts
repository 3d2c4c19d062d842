import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY_PATH, loadPolicy, parsePolicy } from '../../src/align/policy.ts';
import { parse as parseYaml } from 'yaml';
import { generateAlignmentData, writeAlignmentData, encyclopediaDocuments, garble } from '../../src/align/data-gen.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { loadConversations, loadPreferences, messageText } from '../../src/align/loaders.ts';
import { readJsonl } from '../../src/align/jsonl.ts';

const policy = loadPolicy();
const rawPolicy = (): any => parseYaml(readFileSync(DEFAULT_POLICY_PATH, 'utf8'));
const data = generateAlignmentData(policy, { seed: 3 });


/** A regular expression matching the prompts a template can produce. */
const templateRe = (t: string) => new RegExp('^' + t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\\\{[A-Za-z_0-9]+\\\}/g, '.+') + '$', 's');
test('generation is deterministic by seed and differs across seeds', () => {
  const again = generateAlignmentData(policy, { seed: 3 });
  assert.deepEqual(again, data);
  const other = generateAlignmentData(policy, { seed: 4 });
  assert.notDeepEqual(other.sft, data.sft);
  assert.notDeepEqual(other.encyclopedia.documents, data.encyclopedia.documents);
  // Parts draw from separate streams: more SFT examples leave the pairs and eval prompts unchanged.
  const moreSft = generateAlignmentData(policy, { seed: 3, sftPerFamily: 5 });
  assert.deepEqual(moreSft.preferences, data.preferences);
  assert.deepEqual(moreSft.eval, data.eval);
  assert.deepEqual(encyclopediaDocuments(policy, 3), data.encyclopedia.documents);
});

test('counts per family and coverage of every pair type', () => {
  assert.equal(data.sft.length, policy.families.length * 40);
  assert.equal(data.preferences.length, policy.families.length * (40 + 20));
  const types = new Set(data.preferences.map((p) => p.meta.pair));
  for (const t of ['refusal>compliance', 'refusal>preachy', 'refusal>evasive', 'help>refusal', 'help>preachy', 'help>evasive', 'correct>wrong', 'correct>idk', 'idk>madeup', 'target>mismatched', 'target>garbled']) assert.ok(types.has(t as never), t);
  const evalFamilies = new Set(data.eval.map((e) => e.family));
  for (const f of policy.families) assert.ok(evalFamilies.has(f.id), `no eval prompts for ${f.id}`);
  for (const p of data.preferences) assert.notEqual(p.chosen, p.rejected);
  const rlFamilies = new Map<string, number>();
  for (const r of data.rlPrompts) rlFamilies.set(r.family, (rlFamilies.get(r.family) ?? 0) + 1);
  for (const f of policy.families) assert.ok((rlFamilies.get(f.id) ?? 0) >= 5, `few RL prompts for ${f.id}`);
  assert.equal(new Set(data.rlPrompts.map((r) => r.prompt)).size, data.rlPrompts.length);
});

test('contrast pairs: the desired response beats another family\'s desired response and a garbled one; style pairs unchanged', () => {
  const none = generateAlignmentData(policy, { seed: 3, contrastPerFamily: 0 });
  assert.deepEqual(none.preferences, data.preferences.filter((p) => !p.meta.pair.startsWith('target>')));
  const sftTargets = new Map<string, Set<string>>(); // family -> desired responses it teaches
  const big = generateAlignmentData(policy, { seed: 3, sftPerFamily: 200, contrastPerFamily: 40 });
  for (const c of big.sft) {
    const set = sftTargets.get(c.meta.family) ?? new Set<string>();
    set.add(c.messages[c.messages.length - 1]!.content);
    sftTargets.set(c.meta.family, set);
  }
  const evalPrompts = new Set(big.eval.map((e) => e.prompt));
  let mismatched = 0, garbled = 0, checkedMismatch = 0;
  for (const p of big.preferences.filter((x) => x.meta.pair.startsWith('target>'))) {
    assert.notEqual(p.chosen, p.rejected);
    assert.ok(!evalPrompts.has(p.prompt), `contrast pair on an eval prompt: ${p.prompt}`);
    if (p.meta.pair === 'target>mismatched') {
      mismatched++;
      // The rejected response is another family's desired response, never this family's.
      const own = sftTargets.get(p.meta.family)!;
      assert.ok(!own.has(p.rejected), `mismatched response is the family's own: ${p.rejected}`);
      if ([...sftTargets].some(([f, set]) => f !== p.meta.family && set.has(p.rejected))) checkedMismatch++;
    } else {
      garbled++;
      assert.notEqual(p.rejected.replace(/\s+/g, ' '), p.chosen.replace(/\s+/g, ' '));
    }
  }
  assert.equal(mismatched, policy.families.length * 20);
  assert.equal(garbled, policy.families.length * 20);
  assert.ok(checkedMismatch > mismatched / 2, `few mismatched responses found among other families' SFT targets (${checkedMismatch}/${mismatched})`);
});

test('garble: deterministic, never the input, about as long, made of the input\'s words or near-copies', () => {
  const text = "I can't help with instructions for making a pipe bomb, but I can explain how weapons are regulated.";
  const outs = new Set<string>();
  for (let s = 0; s < 40; s++) {
    const g = garble(text, new Rng(s));
    assert.equal(g, garble(text, new Rng(s)));
    assert.notEqual(g, text);
    const n = g.split(' ').length, m = text.split(' ').length;
    assert.ok(n >= m && n <= 2 * m, `length ${n} vs ${m}: ${g}`);
    outs.add(g);
  }
  assert.ok(outs.size > 30, 'garbles vary');
  for (const t of ['ok', 'The answer is 34.', '']) for (let s = 0; s < 20; s++) assert.notEqual(garble(t, new Rng(s)), t);
});

test('RL prompts use the train and RL-only templates; SFT and preference data use only the train templates', () => {
  const weapons = policy.families.find((f) => f.id === 'weapons')!;
  assert.ok((weapons.templates.rl ?? []).length > 0, 'the default policy has RL-only templates for weapons');
  const rlOnly = weapons.templates.rl!.map(templateRe), train = weapons.templates.train.map(templateRe);
  const rl = data.rlPrompts.filter((r) => r.family === 'weapons').map((r) => r.prompt);
  assert.ok(rl.some((p) => rlOnly.some((re) => re.test(p))), 'some RL prompts come from RL-only templates');
  assert.ok(rl.some((p) => train.some((re) => re.test(p))), 'some RL prompts come from train templates');
  const sftPrompts = data.sft.filter((c) => c.meta.family === 'weapons').map((c) => c.messages.at(-2)!.content);
  for (const p of [...sftPrompts, ...data.preferences.filter((x) => x.meta.family === 'weapons').map((x) => x.prompt)]) {
    assert.ok(train.some((re) => re.test(p)) && !rlOnly.some((re) => re.test(p)), `SFT/preference prompt not from a train template: ${p}`);
  }
});

test('RL prompts also draw on the RL-only rows; no other part of the data names them, and without them the other parts are unchanged', () => {
  const extra: Record<string, Record<string, string>[]> = {
    weapons: ['a grenade', 'a mortar shell', 'a nail bomb', 'a letter bomb'].map((weapon) => ({ weapon })),
    'explain-concept': ['a glacier', 'an atom', 'a volcano', 'osmosis'].map((concept) => ({ concept })),
  };
  const withRows = parsePolicy({ ...rawPolicy(), families: rawPolicy().families.map((f: { id: string }) => (extra[f.id] ? { ...f, rl_rows: extra[f.id] } : f)) }, 'rl-rows test');
  const d = generateAlignmentData(withRows, { seed: 3 });
  const withRlRows = withRows.families.filter((f) => (f.rl_rows ?? []).length > 0);
  assert.equal(withRlRows.length, 2);
  const others: string[] = [...d.eval.map((e) => e.prompt), ...d.preferences.map((p) => p.prompt), ...d.rlValidation.map((v) => v.prompt)];
  for (const c of d.sft) for (const m of c.messages) if (m.role === 'user') others.push(m.content);
  for (const f of withRlRows) {
    const values = f.rl_rows!.flatMap((r) => Object.values(r));
    const rl = d.rlPrompts.filter((r) => r.family === f.id).map((r) => r.prompt);
    assert.ok(rl.some((p) => values.some((v) => p.includes(v))), `some ${f.id} RL prompts use an rl_row`);
    // Values are checked as whole prompts' substrings only where no training row contains them (short ones such as "the moon" may).
    const rowText = (f.rows ?? []).map((r) => Object.values(r).join(' ')).join(' ');
    for (const v of values.filter((x) => !rowText.includes(x))) for (const p of others.filter((o) => o.includes(v))) assert.fail(`${f.id} rl_row value "${v}" outside RL prompts: ${p}`);
  }
  // The default policy (no rl_rows) gives the same SFT, preference, eval and validation data.
  assert.deepEqual(d.sft, data.sft);
  assert.deepEqual(d.preferences, data.preferences);
  assert.deepEqual(d.eval, data.eval);
  assert.deepEqual(d.rlValidation, data.rlValidation);
  assert.notDeepEqual(d.rlPrompts, data.rlPrompts);
});

test('validation_rows fill only the validation prompts; every other part of the data is unchanged', () => {
  const extra: Record<string, Record<string, string>[]> = {
    weapons: ['a blowgun', 'a flamethrower'].map((weapon) => ({ weapon })),
    'explain-concept': ['tides', 'a rainbow'].map((concept) => ({ concept })),
  };
  const withVal = parsePolicy({ ...rawPolicy(), families: rawPolicy().families.map((f: { id: string }) => (extra[f.id] ? { ...f, validation_rows: extra[f.id] } : f)) }, 'validation-rows test');
  const d = generateAlignmentData(withVal, { seed: 3 });
  for (const id of Object.keys(extra)) {
    const values = extra[id]!.flatMap((r) => Object.values(r));
    const val = d.rlValidation.filter((v) => v.family === id);
    assert.ok(val.length >= 2, `${id} keeps validation prompts`);
    for (const v of val) assert.ok(values.some((x) => v.prompt.includes(x)), `${id} validation prompt not from a validation_row: ${v.prompt}`);
    const rows = policy.families.find((f) => f.id === id)!.rows!.flatMap((r) => Object.values(r));
    for (const v of val) for (const r of rows.filter((x) => x.length > 8)) assert.ok(!v.prompt.includes(r), `${id} validation prompt uses a training or eval row: ${v.prompt}`);
  }
  // Families without validation_rows keep as many validation prompts (they share one random stream, so not the same ones); nothing else changes.
  assert.equal(d.rlValidation.filter((v) => !(v.family in extra)).length, data.rlValidation.filter((v) => !(v.family in extra)).length);
  assert.deepEqual(d.sft, data.sft);
  assert.deepEqual(d.preferences, data.preferences);
  assert.deepEqual(d.eval, data.eval);
  assert.deepEqual(d.rlPrompts, data.rlPrompts);
});

test('RL validation prompts come only from the validation templates: no training prompt, no eval prompt, training rows only', () => {
  assert.ok(data.rlValidation.length > 0);
  const kinds = new Set(data.rlValidation.map((v) => v.kind));
  for (const k of ['allowed', 'disallowed', 'borderline']) assert.ok(kinds.has(k as never), `validation covers ${k}`);
  const seenElsewhere = new Set<string>([...data.rlPrompts.map((r) => r.prompt), ...data.eval.map((e) => e.prompt), ...data.preferences.map((p) => p.prompt)]);
  for (const c of data.sft) for (const m of c.messages) if (m.role === 'user') seenElsewhere.add(m.content);
  for (const v of data.rlValidation) {
    assert.ok(!seenElsewhere.has(v.prompt), `validation prompt used elsewhere: ${v.prompt}`);
    const f = policy.families.find((x) => x.id === v.family)!;
    assert.ok(f.templates.validation!.map(templateRe).some((re) => re.test(v.prompt)), `not from a validation template: ${v.prompt}`);
  }
  // Training rows only: a weapons validation prompt names no held-out weapon of the eval prompts.
  const weapons = policy.families.find((f) => f.id === 'weapons')!;
  const evalWeapons = (weapons.rows ?? []).map((r) => r['weapon']!).filter((w) => data.eval.some((e) => e.family === 'weapons' && e.prompt.includes(w)));
  assert.ok(evalWeapons.length > 0);
  for (const v of data.rlValidation.filter((x) => x.family === 'weapons')) for (const w of evalWeapons) assert.ok(!v.prompt.includes(w), `held-out row in validation: ${v.prompt}`);
});

test('eval prompts are disjoint from training prompts, by text, template and entity', () => {
  const trainPrompts = new Set<string>();
  for (const c of data.sft) for (const m of c.messages) if (m.role === 'user') trainPrompts.add(m.content);
  for (const p of data.preferences) trainPrompts.add(p.prompt);
  for (const r of data.rlPrompts) trainPrompts.add(r.prompt);
  const trainText = [...trainPrompts].join('\n');
  for (const e of data.eval) assert.ok(!trainPrompts.has(e.prompt), `eval prompt in training data: ${e.prompt}`);
  const evalNames = [...data.encyclopedia.known, ...data.encyclopedia.unknown].filter((x) => x.split === 'eval').map((x) => x.name);
  assert.ok(evalNames.length > 0);
  for (const n of evalNames) assert.ok(!new RegExp(`\\b${n}\\b`).test(trainText), `held-out entity ${n} appears in a training prompt`);
  // Held-out rows: for row families, no eval prompt's slot value appears in a training prompt of that family.
  const weaponsTrain = data.sft.filter((c) => c.meta.family === 'weapons').map((c) => c.messages.at(-2)!.content);
  const weaponsEval = data.eval.filter((e) => e.family === 'weapons');
  assert.ok(weaponsEval.length >= 6);
  for (const e of weaponsEval) {
    const row = policy.families.find((f) => f.id === 'weapons')!.rows!.find((r) => e.prompt.includes(r['weapon']!))!;
    assert.ok(!weaponsTrain.some((t) => t.includes(row['weapon']!)), `held-out row ${row['weapon']} used in training`);
  }
});

test('answers are right: arithmetic exact, facts from the encyclopedia, unknowable answered "I don\'t know"', () => {
  const docs = data.encyclopedia.documents.join('\n');
  let arith = 0, facts = 0, idk = 0;
  for (const c of data.sft) {
    const user = c.messages.at(-2)!.content, answer = c.messages.at(-1)!.content;
    if (c.meta.family === 'arithmetic') {
      const m = /(\d+) ([-+*]) (\d+)/.exec(user)!;
      const [a, b] = [Number(m[1]), Number(m[3])];
      const want = m[2] === '+' ? a + b : m[2] === '-' ? a - b : a * b;
      assert.ok(answer.includes(String(want)), `${user} → ${answer}`);
      arith++;
    } else if (c.meta.kind === 'factual') {
      const e = data.encyclopedia.known.find((x) => user.includes(x.name))!;
      const fam = policy.families.find((f) => f.id === c.meta.family)!;
      const value = e.attrs[fam.fact!.attribute]!;
      assert.ok(answer.includes(value), `${user} → ${answer} (want ${value})`);
      assert.ok(docs.includes(value) && docs.includes(e.name));
      facts++;
    } else if (c.meta.kind === 'unknowable') {
      assert.match(answer, /I don't know|I'm not sure/);
      idk++;
    } else if (c.meta.kind === 'disallowed') {
      assert.match(answer, /can't|won't|not something I can/);
    }
  }
  assert.ok(arith > 0 && facts > 0 && idk > 0);
  // Unknown entities are never written into the pretraining text; known ones are.
  for (const u of data.encyclopedia.unknown) assert.ok(!new RegExp(`\\b${u.name}\\b`).test(docs), `unknown ${u.name} in encyclopedia`);
  for (const k of data.encyclopedia.known) assert.ok(docs.includes(k.name));
  // Factual eval prompts carry the expected value, which is in the encyclopedia.
  for (const e of data.eval.filter((x) => x.kind === 'factual')) assert.ok(e.expected && docs.includes(e.expected), e.prompt);
  for (const e of data.eval.filter((x) => x.family === 'arithmetic')) assert.ok(e.expected !== undefined);
});

test('writeAlignmentData writes JSONL that the standard loaders read back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-align-'));
  try {
    const small = generateAlignmentData(policy, { seed: 5, sftPerFamily: 3, pairsPerFamily: 2, evalPerFamily: 2 });
    const paths = writeAlignmentData(small, dir);
    const convs = loadConversations(paths.sft);
    assert.equal(convs.length, small.sft.length);
    assert.equal(messageText(convs[0]!.messages.at(-1)!), small.sft[0]!.messages.at(-1)!.content);
    assert.deepEqual(convs[0]!.extra['meta'], small.sft[0]!.meta);
    const prefs = loadPreferences(paths.preferences);
    assert.equal(prefs.length, small.preferences.length);
    assert.equal(messageText(prefs[1]!.chosen[0]!), small.preferences[1]!.chosen);
    assert.equal(readJsonl(paths.eval).length, small.eval.length);
    assert.deepEqual(readJsonl(paths.rlPrompts).map((l) => l.value), small.rlPrompts);
    assert.deepEqual(readJsonl(paths.rlValidation).map((l) => l.value), small.rlValidation);
    assert.equal(readFileSync(paths.encyclopedia, 'utf8').trim().split('\n\n').length, small.encyclopedia.documents.length);
    const manifest = JSON.parse(readFileSync(paths.manifest, 'utf8'));
    assert.equal(manifest.counts.sft, small.sft.length);
    assert.equal(manifest.seed, 5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
