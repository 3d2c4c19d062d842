/**
 * Loader for LLaVA-format conversation data, so users can train on their own image–text pairs.
 *
 * Input: a JSON array (or JSON Lines, one entry per line, for files ending in .jsonl) of
 *   { "id": "...", "image": "relative/path.jpg", "conversations": [
 *       { "from": "human", "value": "<image>\nWhat is in the picture?" },
 *       { "from": "gpt",   "value": "A cat." }, ... ] }
 * `image` may also be a list of paths (one `<image>` tag per path, in order) or be absent (text only).
 * Relative image paths are resolved against `imageDir` (default: the JSON file's folder).
 * Roles: "human" (or "user") → user, "gpt" (or "assistant") → assistant.
 *
 * Output: one `Conversation` per entry, with OpenAI-style content parts; each `<image>` tag becomes an
 * image part and the whitespace next to the tag is dropped ("<image>\nWhat…" → [image, "What…"]).
 *
 * Validation (every problem names the file, the entry index and id, and what is wrong; up to
 * `maxErrors` problems are reported together): the entry is an object; `conversations` is a non-empty
 * list of {from, value} with a known role and a string value; turns alternate user/assistant, starting
 * with user and ending with assistant; `<image>` appears only in user turns and exactly once per
 * image; every image file exists (unless `checkImages: false`).
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { InputError } from '../util/errors.ts';

export const IMAGE_TAG = '<image>';

export type ContentPart = { type: 'text'; text: string } | { type: 'image'; path: string };

export interface ChatMessage {
  role: 'user' | 'assistant';
  content: ContentPart[];
}

export interface Conversation {
  /** The entry's id (as a string), or "#<index>" when the entry has none. */
  id: string;
  messages: ChatMessage[];
}

export interface LlavaOptions {
  /** Folder that relative image paths are resolved against (default: the JSON file's folder). */
  imageDir?: string;
  /** Check that every image file exists (default true). */
  checkImages?: boolean;
  /** Stop after this many problems and report them together (default 20). */
  maxErrors?: number;
}

const ROLES: Record<string, ChatMessage['role']> = { human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant' };

/** Reads and validates a LLaVA JSON or JSONL file. */
export function loadLlava(path: string, opts: LlavaOptions = {}): Conversation[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(`LLaVA file ${path}: cannot read: ${(e as Error).message}`);
  }
  let entries: unknown;
  if (path.endsWith('.jsonl')) {
    const list: unknown[] = [];
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      try { list.push(JSON.parse(line)); } catch (e) { throw new InputError(`LLaVA file ${path}: line ${i + 1} is not valid JSON (${(e as Error).message})`); }
    });
    entries = list;
  } else {
    try { entries = JSON.parse(text); } catch (e) { throw new InputError(`LLaVA file ${path}: not valid JSON (${(e as Error).message})`); }
  }
  return parseLlava(entries, path, { imageDir: dirname(resolve(path)), ...opts });
}

/** Validates already-parsed LLaVA entries; `source` names them in errors. */
export function parseLlava(entries: unknown, source: string, opts: LlavaOptions = {}): Conversation[] {
  if (!Array.isArray(entries)) throw new InputError(`LLaVA file ${source}: expected a JSON array of entries, found ${entries === null ? 'null' : typeof entries}`);
  const imageDir = resolve(opts.imageDir ?? '.');
  const checkImages = opts.checkImages ?? true;
  const maxErrors = opts.maxErrors ?? 20;
  const errors: string[] = [];
  const out: Conversation[] = [];
  for (let i = 0; i < entries.length && errors.length < maxErrors; i++) {
    const e = entries[i];
    const idOf = (x: unknown) => (typeof x === 'string' || typeof x === 'number' ? String(x) : null);
    const id = typeof e === 'object' && e !== null ? idOf((e as Record<string, unknown>)['id']) : null;
    const problem = (msg: string) => errors.push(`entry ${i}${id !== null ? ` (id ${JSON.stringify(id)})` : ''}: ${msg}`);
    const conv = parseEntry(e, imageDir, checkImages, problem);
    if (conv) out.push({ id: id ?? `#${i}`, messages: conv });
  }
  if (errors.length > 0) {
    const more = errors.length >= maxErrors ? ` (stopped after ${maxErrors} problems)` : '';
    if (errors.length === 1) throw new InputError(`LLaVA file ${source}: ${errors[0]}`);
    throw new InputError(`LLaVA file ${source}: ${errors.length} problems${more}:\n  ${errors.join('\n  ')}`);
  }
  return out;
}

/** Validates one entry; reports problems through `problem` and returns null when there was one. */
function parseEntry(e: unknown, imageDir: string, checkImages: boolean, problem: (m: string) => void): ChatMessage[] | null {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) { problem(`expected an object {id, image, conversations}, found ${Array.isArray(e) ? 'an array' : e === null ? 'null' : typeof e}`); return null; }
  const obj = e as Record<string, unknown>;
  let bad = 0;
  const report = (m: string) => { bad++; problem(m); };
  if (obj['id'] !== undefined && typeof obj['id'] !== 'string' && typeof obj['id'] !== 'number') report(`"id" must be a string or a number, found ${typeof obj['id']}`);
  // Images.
  let images: string[] = [];
  const img = obj['image'];
  if (img !== undefined && img !== null) {
    const list = Array.isArray(img) ? img : [img];
    if (list.length === 0 || !list.every((p) => typeof p === 'string' && p.length > 0)) report(`"image" must be a non-empty path or a list of paths, found ${JSON.stringify(img)}`);
    else images = (list as string[]).map((p) => (isAbsolute(p) ? p : resolve(imageDir, p)));
  }
  if (checkImages) {
    for (const p of images) {
      let ok = false;
      try { ok = statSync(p).isFile(); } catch { ok = false; }
      if (!ok) report(`image file ${p} does not exist`);
    }
  }
  // Turns.
  const turns = obj['conversations'];
  if (!Array.isArray(turns) || turns.length === 0) {
    report(`"conversations" must be a non-empty list of {from, value} turns, found ${JSON.stringify(turns)?.slice(0, 60) ?? 'nothing'}`);
    return null;
  }
  const messages: ChatMessage[] = [];
  let tags = 0;
  turns.forEach((t, k) => {
    if (typeof t !== 'object' || t === null) { report(`turn ${k} must be an object {from, value}`); return; }
    const { from, value } = t as Record<string, unknown>;
    const role = typeof from === 'string' ? ROLES[from] : undefined;
    if (!role) { report(`turn ${k} has role ${JSON.stringify(from)}; expected "human" or "gpt"`); return; }
    if (typeof value !== 'string') { report(`turn ${k} (${from}) has no string "value"`); return; }
    const expected = k % 2 === 0 ? 'user' : 'assistant';
    if (role !== expected) report(`turn ${k} is from ${JSON.stringify(from)} but turns must alternate human, gpt, human, … starting with human`);
    const pieces = value.split(IMAGE_TAG);
    const n = pieces.length - 1;
    if (n > 0 && role === 'assistant') report(`turn ${k} (${from}) contains ${IMAGE_TAG}; images may appear only in human turns`);
    const content: ContentPart[] = [];
    pieces.forEach((piece, j) => {
      let text = piece;
      if (j > 0) text = text.trimStart();
      if (j < n) text = text.trimEnd();
      if (text.length > 0) content.push({ type: 'text', text });
      if (j < n) { content.push({ type: 'image', path: images[tags] ?? '' }); tags++; }
    });
    messages.push({ role, content });
  });
  if (turns.length % 2 !== 0) report(`the last turn is from a human; a conversation must end with a gpt answer`);
  if (tags !== images.length) {
    if (images.length > 0 && tags === 0) report(`has an image but no ${IMAGE_TAG} tag in its human turns`);
    else if (images.length === 0) report(`has ${tags} ${IMAGE_TAG} tag(s) but no "image"`);
    else report(`has ${images.length} image(s) but ${tags} ${IMAGE_TAG} tag(s)`);
  }
  return bad === 0 ? messages : null;
}
