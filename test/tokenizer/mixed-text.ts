/**
 * Builds large, varied, reproducible text for tokenizer parity tests and the benchmark, from
 * local sources only: source files under node_modules, plus generated prose in several scripts
 * (seeded), emoji and ZWJ sequences, long whitespace and digit runs, contractions and every
 * kind of line break. Nothing is downloaded.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, extname } from 'node:path';
import { Rng } from '../../src/tensor/rng.ts';

/** Lists files under `root` with one of `exts`, depth-first in sorted order (deterministic). */
export function listFiles(root: string, exts: string[], limitBytes = Infinity): string[] {
  const out: string[] = [];
  let total = 0;
  const walk = (dir: string): void => {
    let names: string[];
    try { names = readdirSync(dir).sort(); } catch { return; }
    for (const name of names) {
      if (total >= limitBytes) return;
      const p = join(dir, name);
      let st;
      try { st = statSync(p); } catch { continue; }
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && exts.includes(extname(name)) && st.size < 4_000_000) {
        out.push(p);
        total += st.size;
      }
    }
  };
  walk(root);
  return out;
}

/** Concatenated source text from node_modules (JS/TS/MD/JSON), up to `bytes` UTF-8 bytes. */
export function sourceText(bytes: number, root = 'node_modules'): string {
  const parts: string[] = [];
  let total = 0;
  for (const f of listFiles(root, ['.js', '.ts', '.md', '.mjs', '.cjs'])) {
    if (f.includes('/ranks/') || f.endsWith('.min.js')) continue; // huge base64 blobs / minified
    const t = readFileSync(f, 'utf8');
    parts.push(t);
    total += Buffer.byteLength(t);
    if (total >= bytes) break;
  }
  return parts.join('\n');
}

const SCRIPTS: Record<string, string> = {
  latin: 'abcdefghijklmnopqrstuvwxyzàéèêëïîôùûçñäöüßøåæœ',
  cyrillic: 'абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФ',
  cjk: '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该由',
  hiragana: 'あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんがぎぐげござじずぜぞだぢづでどばびぶべぼ',
  arabic: 'ابتثجحخدذرزسشصضطظعغفقكلمنهوي',
  devanagari: 'अआइईउऊएऐओऔकखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह',
  greek: 'αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ',
};
const MARKS = ['\u0301', '\u0308', '\u093f', '\u064e', '\u0651', '\u3099'];
const EMOJI = ['😀', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '❤️', '🇫🇷', '🧑🏿‍💻', '✨', '🤖', '👩‍❤️‍💋‍👨', '1️⃣', '☕'];
const PUNCT = ['.', ',', '!', '?', ';', ':', '…', '—', '–', '«', '»', '“', '”', '(', ')', '「', '」', '。', '、', '،', '؟', '/', '//', '->', '=>', '#', '@', '%'];
const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'x", "''", "'"];
const BREAKS = ['\n', '\r\n', '\r', '\n\n', '\u2028', '\u2029', '\u0085', '\v', '\f'];
const SPACES = [' ', '  ', '\t', '\u00a0', '\u3000', '\u2009', '\u200b', '\ufeff', ' \t '];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

function word(rng: Rng, alphabet: string, portable = false): string {
  const chars = Array.from(alphabet);
  const n = 1 + rng.int(rng.uniform() < 0.1 ? 20 : 8);
  let w = '';
  for (let i = 0; i < n; i++) {
    w += pick(rng, chars);
    if (rng.uniform() < 0.03 && !portable) w += pick(rng, MARKS);
  }
  const r = rng.uniform();
  if (r < 0.1) w = w.charAt(0).toUpperCase() + w.slice(1);
  else if (r < 0.13) w = w.toUpperCase();
  else if (r < 0.15) w = Array.from(w).map((c, i) => (i % 2 ? c.toUpperCase() : c)).join('');
  return w;
}

/**
 * Seeded prose mixing scripts, numbers, emoji, odd whitespace and line breaks; about `chars` code
 * units. `portable` leaves out what regex engines classify differently (combining marks, random
 * astral code points, U+0085, U+FEFF, U+200B), for comparisons with the Rust-regex tiktoken.
 * Words are fresh random letter strings, so nearly every prose word is unique: the worst case
 * for an encoder's word cache.
 */
export function proseText(chars: number, seed = 1, portable = false): string {
  const rng = new Rng(seed);
  const names = Object.keys(SCRIPTS);
  const parts: string[] = [];
  let len = 0;
  let script = pick(rng, names);
  while (len < chars) {
    const r = rng.uniform();
    let s: string;
    if (r < 0.02) script = pick(rng, names);
    if (portable && r >= 0.885 && r < 0.89) continue;
    if (r < 0.55) s = ' ' + word(rng, SCRIPTS[script]!, portable);
    else if (r < 0.62) s = pick(rng, PUNCT);
    else if (r < 0.66) s = pick(rng, CONTRACTIONS);
    else if (r < 0.71) s = ' ' + String(rng.int(10 ** (1 + rng.int(rng.uniform() < 0.05 ? 40 : 7)) % 2 ** 31));
    else if (r < 0.72) s = ' ' + '0123456789'.repeat(1 + rng.int(30)).slice(rng.int(10));
    else if (r < 0.76) s = pick(rng, EMOJI) + (rng.uniform() < 0.5 ? pick(rng, EMOJI) : '');
    else if (r < 0.82) s = pick(rng, BREAKS);
    else if (r < 0.86) s = pick(rng, SPACES);
    else if (r < 0.87) s = ' '.repeat(1 + rng.int(200)) + (rng.uniform() < 0.5 ? '\n' : '');
    else if (r < 0.875) s = '\t'.repeat(1 + rng.int(50));
    else if (r < 0.88) s = '\n'.repeat(1 + rng.int(20)) + ' '.repeat(rng.int(9));
    else if (r < 0.885) s = '-'.repeat(1 + rng.int(120));
    else if (r < 0.89) s = String.fromCodePoint(0x10000 + rng.int(0x2ffff)); // astral, often unassigned
    else if (r < 0.895) s = '<|endoftext|>';
    else s = ' ' + word(rng, SCRIPTS.latin!);
    parts.push(s);
    len += s.length;
  }
  const text = parts.join('');
  return portable ? text.replace(/[\u0085\ufeff\u200b]/g, ' ') : text;
}

/** Mixed text of roughly `bytes` UTF-8 bytes: half source code, half generated prose, interleaved (see proseText for the flags). */
export function mixedText(bytes: number, seed = 1, portable = false): string {
  const code = sourceText(bytes / 2);
  const prose = proseText(Math.floor(bytes / 4), seed, portable); // prose averages > 1 byte per code unit
  const out: string[] = [];
  const chunk = 4096;
  for (let i = 0, j = 0; i < code.length || j < prose.length; i += chunk, j += chunk / 2) {
    out.push(code.slice(i, i + chunk), prose.slice(j, j + chunk / 2));
  }
  return out.join('');
}
