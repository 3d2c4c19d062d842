/**
 * Loaders for the standard alignment JSONL formats, normalised to one shape.
 *
 * Conversations — one per line: `{"messages": [{"role", "content"}, ...]}`. Roles: system,
 * user, assistant (`developer` is read as system). Content is a string or a list of OpenAI
 * content parts: `{"type":"text","text"}`, `{"type":"image_url","image_url":{"url","detail"?}}`
 * (or `image_url` as a bare string), or `{"type":"image"}` placeholders that take the line's
 * `"images": [url, ...]` in order (the LLaVA / Hugging Face style). A conversation must have at
 * least one assistant message.
 *
 * Preference pairs — one per line: `{"prompt", "chosen", "rejected"}`. The prompt is a string
 * (one user message) or a message list; chosen and rejected are strings (one assistant
 * message) or message lists, which may repeat the prompt as a prefix (it is removed). Without a
 * `prompt` key, chosen and rejected are whole conversations and the prompt is their common
 * leading messages (the "implicit prompt" format).
 *
 * Every error names the file and the 1-based line, then the field.
 */
import { z } from 'zod';
import { InputError } from '../util/errors.ts';
import { parseJsonl, readJsonl, type JsonlLine } from './jsonl.ts';

/** A normalised content part. */
export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image'; url: string; detail?: 'auto' | 'low' | 'high' };

/** A normalised message: content is always a list of parts. */
export interface Message { role: 'system' | 'user' | 'assistant'; content: ContentPart[] }

/** A conversation with where it came from. */
export interface Conversation { messages: Message[]; source: string; line: number; extra: Record<string, unknown> }

/** A preference pair: prompt messages, then the chosen and rejected continuations. */
export interface Preference { prompt: Message[]; chosen: Message[]; rejected: Message[]; source: string; line: number; extra: Record<string, unknown> }

const RawPart = z.union([
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('image_url'), image_url: z.union([z.string().min(1), z.object({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() })]) }),
  z.object({ type: z.literal('image') }),
], { error: 'a content part must be {"type":"text","text":string}, {"type":"image_url","image_url":{"url":string}} or {"type":"image"}' });
const RawMessage = z.object({
  role: z.string(),
  content: z.union([z.string(), z.array(RawPart).min(1)], { error: 'content must be a string or a non-empty list of content parts' }),
});
const RawMessages = z.array(RawMessage).min(1);
const textOrMessages = z.union([z.string(), RawMessages], { error: 'expected a string or a non-empty list of {"role","content"} messages' });
const RawConversation = z.looseObject({ messages: RawMessages, images: z.array(z.string().min(1)).optional() });
const RawPreference = z.looseObject({
  prompt: textOrMessages.optional(),
  chosen: textOrMessages,
  rejected: textOrMessages,
  images: z.array(z.string().min(1)).optional(),
});

/** Reads a conversations JSONL file. */
export function loadConversations(path: string): Conversation[] {
  return readJsonl(path).map((l) => toConversation(l, path));
}

/** Parses conversations JSONL text; `source` names it in errors. */
export function parseConversations(text: string, source: string): Conversation[] {
  return parseJsonl(text, source).map((l) => toConversation(l, source));
}

/** Reads a preference-pairs JSONL file. */
export function loadPreferences(path: string): Preference[] {
  return readJsonl(path).map((l) => toPreference(l, path));
}

/** Parses preference-pairs JSONL text; `source` names it in errors. */
export function parsePreferences(text: string, source: string): Preference[] {
  return parseJsonl(text, source).map((l) => toPreference(l, source));
}

/** The text of a message, with each image part written as `placeholder`. */
export function messageText(m: Message, placeholder = '<|image|>'): string {
  return m.content.map((p) => (p.type === 'text' ? p.text : placeholder)).join('');
}

function toConversation({ line, value }: JsonlLine, source: string): Conversation {
  const at = `${source}:${line}`;
  const r = RawConversation.safeParse(value);
  if (!r.success) throw new InputError(`${at}: not a conversation ({"messages":[{"role","content"}]}): ${issues(r.error)}`);
  const images = new ImageQueue(r.data.images, at);
  const messages = r.data.messages.map((m, i) => toMessage(m, `${at}: messages[${i}]`, images));
  images.checkAllUsed();
  if (!messages.some((m) => m.role === 'assistant')) throw new InputError(`${at}: conversation has no assistant message (roles: ${messages.map((m) => m.role).join(', ')})`);
  const { messages: _m, images: _i, ...extra } = r.data;
  return { messages, source, line, extra };
}

function toPreference({ line, value }: JsonlLine, source: string): Preference {
  const at = `${source}:${line}`;
  const r = RawPreference.safeParse(value);
  if (!r.success) throw new InputError(`${at}: not a preference pair ({"prompt","chosen","rejected"}): ${issues(r.error)}`);
  const d = r.data;
  const images = new ImageQueue(d.images, at);
  const asMessages = (v: string | z.infer<typeof RawMessages>, field: string, role: 'user' | 'assistant'): Message[] =>
    typeof v === 'string' ? [{ role, content: [{ type: 'text', text: v }] }] : v.map((m, i) => toMessage(m, `${at}: ${field}[${i}]`, images));
  let prompt: Message[];
  let chosen: Message[], rejected: Message[];
  if (d.prompt !== undefined) {
    prompt = asMessages(d.prompt, 'prompt', 'user');
    chosen = stripPrefix(asMessages(d.chosen, 'chosen', 'assistant'), prompt);
    rejected = stripPrefix(asMessages(d.rejected, 'rejected', 'assistant'), prompt);
  } else {
    if (typeof d.chosen === 'string' || typeof d.rejected === 'string') throw new InputError(`${at}: without a "prompt", "chosen" and "rejected" must be message lists that share the prompt as a prefix`);
    const c = asMessages(d.chosen, 'chosen', 'assistant'), rj = asMessages(d.rejected, 'rejected', 'assistant');
    let k = 0;
    while (k < c.length && k < rj.length && sameMessage(c[k]!, rj[k]!)) k++;
    if (k === 0) throw new InputError(`${at}: without a "prompt", "chosen" and "rejected" must start with the same prompt messages; their first messages differ`);
    prompt = c.slice(0, k); chosen = c.slice(k); rejected = rj.slice(k);
  }
  images.checkAllUsed();
  if (prompt.length === 0) throw new InputError(`${at}: prompt is empty`);
  for (const [name, list] of [['chosen', chosen], ['rejected', rejected]] as const) {
    if (list.length === 0) throw new InputError(`${at}: ${name} has no messages after the prompt`);
    const bad = list.find((m) => m.role !== 'assistant');
    if (bad) throw new InputError(`${at}: ${name} must continue the prompt with assistant messages only, found role '${bad.role}'`);
  }
  const { prompt: _p, chosen: _c, rejected: _r, images: _i, ...extra } = d;
  return { prompt, chosen, rejected, source, line, extra };
}

/** Removes `prefix` from the front of `list` if `list` starts with it. */
function stripPrefix(list: Message[], prefix: Message[]): Message[] {
  if (list.length <= prefix.length) return list;
  for (let i = 0; i < prefix.length; i++) if (!sameMessage(list[i]!, prefix[i]!)) return list;
  return list.slice(prefix.length);
}

function sameMessage(a: Message, b: Message): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function toMessage(m: z.infer<typeof RawMessage>, at: string, images: ImageQueue): Message {
  const role = m.role === 'developer' ? 'system' : m.role;
  if (role !== 'system' && role !== 'user' && role !== 'assistant') throw new InputError(`${at}: role must be system, user or assistant (or developer), got ${JSON.stringify(m.role)}`);
  if (typeof m.content === 'string') return { role, content: [{ type: 'text', text: m.content }] };
  const content: ContentPart[] = m.content.map((p, j) => {
    if (p.type === 'text') return { type: 'text', text: p.text };
    if (role !== 'user') throw new InputError(`${at}: content[${j}]: images are only allowed in user messages, found one in a ${role} message`);
    if (p.type === 'image') return { type: 'image', url: images.next(`${at}: content[${j}]`) };
    const iu = p.image_url;
    return typeof iu === 'string' ? { type: 'image', url: iu } : iu.detail ? { type: 'image', url: iu.url, detail: iu.detail } : { type: 'image', url: iu.url };
  });
  return { role, content };
}

/** The line's `images` list, consumed in order by `{"type":"image"}` placeholders. */
class ImageQueue {
  private used = 0;
  constructor(private readonly urls: string[] | undefined, private readonly at: string) {}
  next(where: string): string {
    const u = this.urls?.[this.used];
    if (u === undefined) throw new InputError(`${where}: {"type":"image"} placeholder #${this.used + 1} has no matching entry in "images" (${this.urls?.length ?? 0} given)`);
    this.used++;
    return u;
  }
  checkAllUsed(): void {
    const n = this.urls?.length ?? 0;
    if (this.used !== n) throw new InputError(`${this.at}: "images" lists ${n} image(s) but ${this.used} {"type":"image"} placeholder(s) use them`);
  }
}

function issues(e: z.ZodError): string {
  return e.issues.slice(0, 3).map((i) => `${i.path.length ? i.path.join('.') : '(line)'}: ${i.message}`).join('; ');
}
