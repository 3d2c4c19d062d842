/**
 * Turns generated token ids into text that is safe to stream.
 *
 * Two things make this more than `decode(ids)`:
 * - a token may end in the middle of a UTF-8 character (byte-level BPE); its text is held
 *   until the character completes, so a client never sees a U+FFFD that later changes;
 * - stop strings may span token boundaries; text that could be the start of a stop string is
 *   held back until it is either completed (generation stops before it) or ruled out.
 */
import type { TextCodec } from './model.ts';

/** A UTF-8 character has at most 4 bytes, so at most 4 byte tokens make one character. */
const MAX_PENDING = 4;

export class TextStream {
  private text = '';
  private pending: number[] = [];
  private sent = 0;
  private readonly maxStop: number;
  private done = false;

  constructor(private readonly codec: TextCodec, private readonly stops: readonly string[] = []) {
    this.maxStop = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Everything released so far (the answer, once finished). */
  get output(): string { return this.text.slice(0, this.sent); }

  /** Adds one token. `delta` is the newly releasable text; `stopped` when a stop string completed. */
  push(id: number): { delta: string; stopped: boolean } {
    if (this.done) return { delta: '', stopped: true };
    this.pending.push(id);
    const t = this.codec.decode(this.pending);
    if (t.endsWith('\uFFFD') && this.pending.length < MAX_PENDING) return { delta: '', stopped: false };
    this.text += t;
    this.pending = [];
    return this.release(false);
  }

  /** Ends the stream: releases held text (unless it completes a stop string). */
  finish(): { delta: string; stopped: boolean } {
    if (this.done) return { delta: '', stopped: true };
    if (this.pending.length) { this.text += this.codec.decode(this.pending); this.pending = []; }
    const r = this.release(true);
    this.done = true;
    return r;
  }

  private release(final: boolean): { delta: string; stopped: boolean } {
    // A stop string can only start in the unreleased tail: released text never ends with a stop's prefix.
    let at = -1;
    for (const s of this.stops) {
      if (s.length === 0) continue;
      const i = this.text.indexOf(s, this.sent);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      const delta = this.text.slice(this.sent, at);
      this.sent = at;
      this.text = this.text.slice(0, at);
      this.done = true;
      return { delta, stopped: true };
    }
    const hold = final ? 0 : this.heldBack();
    const end = this.text.length - hold;
    const delta = this.text.slice(this.sent, end);
    this.sent = end;
    return { delta, stopped: false };
  }

  /** Length of the longest unreleased suffix that is a proper prefix of some stop string. */
  private heldBack(): number {
    const tail = this.text.length - this.sent;
    for (let len = Math.min(this.maxStop - 1, tail); len > 0; len--) {
      const suffix = this.text.slice(this.text.length - len);
      if (this.stops.some((s) => s.length > len && s.startsWith(suffix))) return len;
    }
    return 0;
  }
}
