/**
 * Prompt templates: `{{name}}` placeholders filled from an item. Available everywhere:
 * `{{question}}`, `{{answer}}`, `{{choices}}` (one "A. text" line per choice), `{{label}}` (the
 * right choice's label) and the item's own fields (`{{subject}}`, ...). Continuation templates
 * also get `{{choice}}` and `{{choice_label}}` for the choice being scored, and there `{{label}}`
 * means that choice's label. An unknown placeholder is an error naming the task file.
 */
import { InputError } from '../util/errors.ts';
import { labelsOf, type EvalItem } from './item.ts';

/** Fills `{{name}}` placeholders from `vars`; `where` names the template in errors. */
export function fill(template: string, vars: Record<string, string>, where: string): string {
  return template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new InputError(`${where}: unknown placeholder {{${name}}}; available: ${Object.keys(vars).map((k) => `{{${k}}}`).join(', ')}`);
    return v;
  });
}

/** The variables of an item for its question template. */
export function itemVars(item: EvalItem): Record<string, string> {
  const labels = labelsOf(item);
  const vars: Record<string, string> = { ...item.fields, question: item.question, answer: item.answer };
  if (item.choices) {
    vars.choices = item.choices.map((c, i) => `${labels[i]}. ${c}`).join('\n');
    if (item.gold !== undefined) vars.label = labels[item.gold]!;
  }
  return vars;
}

/** The variables of choice `i` for a continuation template. */
export function choiceVars(item: EvalItem, i: number): Record<string, string> {
  const labels = labelsOf(item);
  return { ...itemVars(item), choice: item.choices![i]!, choice_label: labels[i]!, label: labels[i]! };
}
