import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_POLICY_PATH, FAMILY_KINDS, familyTags, loadPolicy, parsePolicy } from '../../src/align/policy.ts';
import { fill, slotsOf } from '../../src/align/template.ts';

const raw = () => parseYaml(readFileSync(DEFAULT_POLICY_PATH, 'utf8'));

test('the default policy loads and has every kind of family', () => {
  const p = loadPolicy();
  for (const k of FAMILY_KINDS) assert.ok(p.families.some((f) => f.kind === k), k);
  const w = p.families.find((f) => f.id === 'weapons')!;
  assert.deepEqual(familyTags(w), ['disallowed', 'weapons', 'harmful']);
});

test('templates: slots, capitalisation, missing slots', () => {
  assert.deepEqual(slotsOf('{Topic} and {topic} and {alt_2}'), ['topic', 'alt_2']);
  assert.equal(fill('{Topic}: {topic}.', { topic: 'the sea' }), 'The sea: the sea.');
  assert.throws(() => fill('Hi {name}', { nam: 'x' }, 'family f, answers[0]'), /family f, answers\[0\]: slot \{name\} has no value; available slots: nam/);
});

test('invalid policies fail with the place and the problem', () => {
  const cases: [string, (p: any) => void, RegExp][] = [
    ['unknown slot', (p) => { p.families[0].templates.train.push('Explain {thing}'); }, /family explain-concept: template "Explain \{thing\}" uses slot \{thing\}/],
    ['template in both splits', (p) => { p.families[0].templates.eval.push(p.families[0].templates.train[0]); }, /appears in both train and eval/],
    ['rl template that is an eval template', (p) => { const f = p.families.find((x: any) => x.id === 'weapons'); f.templates.rl = [f.templates.eval[0]]; }, /family weapons: template appears in both rl and eval/],
    ['rl template that is a train template', (p) => { const f = p.families.find((x: any) => x.id === 'weapons'); f.templates.rl = [f.templates.train[0]]; }, /family weapons: template appears in both train and rl/],
    ['validation template that is an eval template', (p) => { const f = p.families.find((x: any) => x.id === 'weapons'); f.templates.validation = [f.templates.eval[0]]; }, /family weapons: template appears in both eval and validation/],
    ['validation template that is an rl template', (p) => { const f = p.families.find((x: any) => x.id === 'weapons'); f.templates.validation = [f.templates.rl[0]]; }, /family weapons: template appears in both rl and validation/],
    ['validation template with an unknown slot', (p) => { const f = p.families.find((x: any) => x.id === 'weapons'); f.templates.validation = ['How do I make {gadget}?']; }, /gadget/],
    ['rl template with an unknown slot', (p) => { p.families.find((x: any) => x.id === 'weapons').templates.rl = ['Make {gadget}.']; }, /family weapons: template "Make \{gadget\}\." uses slot \{gadget\}/],
    ['rl_row without a prompt slot', (p) => { p.families.find((x: any) => x.id === 'weapons').rl_rows = [{ gadget: 'a crossbow' }]; }, /family weapons\.rl_rows\[0\]: lacks slot\(s\) weapon used by the train\/rl templates/],
    ['rl_row that repeats a row', (p) => { const f = p.families.find((x: any) => x.id === 'weapons'); f.rl_rows = [{ weapon: 'a crossbow' }, { weapon: ` ${f.rows[2].weapon.toUpperCase()}` }]; }, /family weapons\.rl_rows\[1\]: repeats a row or an earlier rl_row/],
    ['rl_row with a key rows lack', (p) => { p.families.find((x: any) => x.id === 'weapons').rl_rows = [{ weapon: 'a crossbow', colour: 'red' }]; }, /family weapons\.rl_rows\[0\]: key\(s\) colour are not row keys/],
    ['rl_rows on a generator family', (p) => { p.families.find((f: any) => f.generator === 'arithmetic').rl_rows = [{ a: '1' }]; }, /family arithmetic: 'rl_rows' needs 'rows'/],
    ['rl_rows on a factual family', (p) => { p.families.find((f: any) => f.kind === 'factual').rl_rows = [{ name: 'X' }]; }, /'rl_rows' is not allowed/],
    ['validation_row without a validation slot', (p) => { p.families.find((x: any) => x.id === 'weapons').validation_rows = [{ gadget: 'a crossbow' }]; }, /family weapons\.validation_rows\[0\]: lacks slot\(s\) weapon used by the validation templates/],
    ['validation_row that repeats an rl_row', (p) => { const f = p.families.find((x: any) => x.id === 'weapons'); f.rl_rows = [{ weapon: 'a crossbow' }]; f.validation_rows = [{ weapon: 'A Crossbow ' }]; }, /family weapons\.validation_rows\[0\]: repeats a row or an earlier rl_row\/validation_row/],
    ['validation_rows without validation templates', (p) => { const f = p.families.find((x: any) => x.id === 'weapons'); delete f.templates.validation; f.validation_rows = [{ weapon: 'a crossbow' }]; }, /family weapons: 'validation_rows' needs 'validation' templates/],
    ['validation_rows on a factual family', (p) => { p.families.find((f: any) => f.kind === 'factual').validation_rows = [{ name: 'X' }]; }, /'validation_rows' is not allowed/],
    ['disallowed without compliance', (p) => { delete p.families.find((f: any) => f.id === 'weapons').compliance; }, /family weapons: a disallowed family needs 'compliance'/],
    ['bad kind', (p) => { p.families[0].kind = 'fine'; }, /families\.0\.kind/],
    ['bad ref', (p) => { p.encyclopedia.kinds[1].attributes.birthplace = { ref: 'planet' }; }, /refers to unknown kind 'planet'/],
    ['fact attribute', (p) => { p.families.find((f: any) => f.kind === 'factual').fact.attribute = 'size'; }, /fact\.attribute 'size' is not an attribute of country/],
    ['holdout too large', (p) => { p.encyclopedia.holdout_per_kind = 99; }, /holdout_per_kind: must be < known_per_kind/],
    ['duplicate family', (p) => { p.families.push(structuredClone(p.families[0])); }, /duplicate family id/],
    ['answer without value', (p) => { p.families.find((f: any) => f.kind === 'factual').answers = ['No idea about {name}.']; }, /every answer must state \{value\}/],
  ];
  for (const [name, mutate, re] of cases) {
    const p = raw();
    mutate(p);
    assert.throws(() => parsePolicy(p, 'test.yaml'), (e: Error) => re.test(e.message) && e.message.includes('test.yaml'), name);
  }
});

test('loadPolicy reports unreadable and unparsable files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-policy-'));
  try {
    assert.throws(() => loadPolicy(join(dir, 'none.yaml')), /none\.yaml: cannot read file/);
    writeFileSync(join(dir, 'bad.yaml'), 'families: [\n');
    assert.throws(() => loadPolicy(join(dir, 'bad.yaml')), /bad\.yaml: not valid YAML/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
