/**
 * Slot templates for the policy data: `{name}` is replaced by the slot's value and `{Name}`
 * (first letter upper case) by the value with its first letter upper-cased. A slot that the
 * bindings lack is an error naming the template and the slot, so a typo in the policy file
 * is caught when the data is generated rather than shipped as literal braces.
 */
import { InputError } from '../util/errors.ts';

const SLOT = /\{([A-Za-z][A-Za-z0-9_]*)\}/g;

/** Names of the slots a template uses, lower-cased first letter (`{Topic}` → `topic`). */
export function slotsOf(template: string): string[] {
  const out = new Set<string>();
  for (const m of template.matchAll(SLOT)) out.add(lowerFirst(m[1]!));
  return [...out];
}

/** Fills `template` from `bindings`; `where` names the template in errors (e.g. `family explain-concept, answers[2]`). */
export function fill(template: string, bindings: Readonly<Record<string, string>>, where = 'template'): string {
  return template.replace(SLOT, (_whole, name: string) => {
    const key = lowerFirst(name);
    const value = bindings[key];
    if (value === undefined) {
      throw new InputError(`${where}: slot {${name}} has no value; available slots: ${Object.keys(bindings).sort().join(', ') || '(none)'}; template: ${JSON.stringify(template)}`);
    }
    return name[0] === name[0]!.toUpperCase() ? upperFirst(value) : value;
  });
}

/** `abc` → `Abc`. */
export function upperFirst(s: string): string {
  return s.length === 0 ? s : s[0]!.toUpperCase() + s.slice(1);
}

function lowerFirst(s: string): string {
  return s.length === 0 ? s : s[0]!.toLowerCase() + s.slice(1);
}
