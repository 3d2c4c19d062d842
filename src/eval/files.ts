/**
 * Expands corpus arguments into a sorted list of files: plain files, directories (every file
 * below them) and globs (`*`, `?` within a path segment, `**` across segments).
 */
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InputError } from '../util/errors.ts';

function walk(dir: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
}

/** A glob pattern as a regular expression over absolute paths. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      if (pattern[i + 2] === '/') { re += '(?:.*/)?'; i += 2; } // "**/": any number of folders, including none
      else { re += '.*'; i++; }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Files named by `specs` (files, directories, globs), absolute, sorted, without duplicates. */
export function expandFiles(specs: string[]): string[] {
  const out = new Set<string>();
  for (const spec of specs) {
    if (/[*?]/.test(spec)) {
      const abs = resolve(spec);
      const star = abs.search(/[*?]/);
      const base = abs.slice(0, abs.lastIndexOf('/', star) + 1) || '/';
      const re = globToRegExp(abs);
      const found: string[] = [];
      if (existsSync(base)) walk(base, found);
      const hits = found.filter((f) => re.test(f));
      if (hits.length === 0) throw new InputError(`corpus glob '${spec}' matches no files`);
      hits.forEach((f) => out.add(f));
    } else {
      if (!existsSync(spec)) throw new InputError(`corpus path '${spec}' does not exist`);
      const abs = resolve(spec);
      if (statSync(abs).isDirectory()) {
        const found: string[] = [];
        walk(abs, found);
        if (found.length === 0) throw new InputError(`corpus directory '${spec}' holds no files`);
        found.forEach((f) => out.add(f));
      } else out.add(abs);
    }
  }
  return [...out].sort();
}
