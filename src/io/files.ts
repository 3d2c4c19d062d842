/**
 * Input files, for every command that reads a corpus (tokenizer training, data prepare,
 * contamination checks): paths, directories and globs (Node 20 has no fs.glob) expanded into a
 * sorted, de-duplicated file list; and the embedded default corpus — text every installation
 * already has (the Markdown, TypeScript and JavaScript under node_modules), so the main job
 * trains on real text with nothing downloaded.
 */
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { InputError } from '../util/errors.ts';

/** Converts a glob (`*`, `**`, `?`, `[a-z]`, `[!a]`, `{a,b}`) to a RegExp over '/'-separated paths. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') { i++; re += '(?:.*/)?'; } else re += '.*';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      const body = glob.slice(i + 1, end);
      re += '[' + (body.startsWith('!') ? '^' + body.slice(1) : body).replace(/\\/g, '\\\\') + ']';
      i = end;
    } else if (ch === '{') {
      const end = glob.indexOf('}', i);
      if (end < 0) { re += '\\{'; continue; }
      re += '(?:' + glob.slice(i + 1, end).split(',').map(escapeRe).join('|') + ')';
      i = end;
    } else re += escapeRe(ch);
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(s: string): string {
  return s.replace(/[.+^${}()|[\]\\]/g, '\\$&');
}

/** Lists files under dir recursively (sorted, deterministic), skipping symlinked dirs. */
export function walkFiles(dir: string, filter?: (path: string) => boolean, skipDir?: (name: string) => boolean): string[] {
  const out: string[] = [];
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    let names: string[];
    try { names = readdirSync(d).sort(); } catch { continue; }
    const subdirs: string[] = [];
    for (const name of names) {
      const p = join(d, name);
      let st;
      try { st = statSync(p); } catch { continue; }
      if (st.isDirectory()) { if (!skipDir?.(name)) subdirs.push(p); }
      else if (st.isFile() && (!filter || filter(p))) out.push(p);
    }
    for (const s of subdirs.reverse()) stack.push(s);
  }
  return out;
}

/**
 * Expands file paths, directories (every file below them) and globs into a sorted,
 * de-duplicated list of absolute files. A path that does not exist, an empty directory or a
 * glob that matches nothing is an InputError naming it. `what` names the inputs in messages.
 */
export function expandInputs(patterns: readonly string[], what = 'input'): string[] {
  const files = new Set<string>();
  for (const pat of patterns) {
    if (!/[*?{[]/.test(pat)) {
      let st;
      try { st = statSync(pat); } catch (e) {
        throw new InputError(`${what} '${pat}' cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      if (st.isDirectory()) {
        const found = walkFiles(pat);
        if (found.length === 0) throw new InputError(`${what} directory '${pat}' holds no files`);
        for (const f of found) files.add(resolve(f));
      } else files.add(resolve(pat));
      continue;
    }
    const norm = resolve(pat).split(sep).join('/');
    const firstMeta = norm.search(/[*?{[]/);
    const base = norm.slice(0, norm.lastIndexOf('/', firstMeta)) || '/';
    const re = globToRegExp(norm);
    const before = files.size;
    for (const f of walkFiles(base)) if (re.test(resolve(f).split(sep).join('/'))) files.add(resolve(f));
    if (files.size === before) throw new InputError(`${what} pattern '${pat}' matches no files`);
  }
  return [...files].sort();
}

/**
 * The embedded default corpus: .md, .ts and .js files under node_modules (sorted), up to
 * `maxBytes` in total, skipping minified bundles and files over 256 KB.
 */
export function defaultCorpus(root = process.cwd(), maxBytes = 24 * 1024 * 1024): string[] {
  const nm = join(root, 'node_modules');
  if (!existsSync(nm)) throw new InputError(`no default corpus: ${nm} does not exist (run npm ci, or pass --input)`);
  const keep = /\.(md|ts|js|mjs|cjs)$/;
  const files = walkFiles(nm, (p) => keep.test(p) && !/\.min\.js$/.test(p), (name) => name === '.bin' || name === '.cache');
  const out: string[] = [];
  let total = 0;
  for (const f of files) {
    const size = statSync(f).size;
    if (size === 0 || size > 256 * 1024) continue;
    if (total + size > maxBytes) break;
    out.push(f);
    total += size;
  }
  if (out.length === 0) throw new InputError(`no default corpus: no .md/.ts/.js files found under ${nm}`);
  return out;
}
