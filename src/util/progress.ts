/**
 * A progress bar with rate and ETA for long jobs. Draws in place on a TTY; on a pipe or in
 * CI it prints a plain line at most every `logEveryMs` so logs stay readable.
 *
 *   const bar = new Progress({ label: 'train', total: 1000, unit: 'step' });
 *   bar.update(10, { loss: 3.21 });
 *   bar.done();
 */
export interface ProgressOptions {
  label: string;
  total: number;
  unit?: string;
  stream?: NodeJS.WriteStream;
  /** When not a TTY: minimum interval between printed lines. */
  logEveryMs?: number;
  /** Silence output entirely (tests). */
  quiet?: boolean;
}

export class Progress {
  private readonly start = Date.now();
  private lastDraw = 0;
  private current = 0;
  private fields: Record<string, string | number> = {};
  private finished = false;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
  }

  /** Sets the absolute position and optional extra fields (shown as key=value). */
  update(current: number, fields?: Record<string, string | number>): void {
    this.current = current;
    if (fields) this.fields = { ...this.fields, ...fields };
    const now = Date.now();
    const every = this.tty ? 100 : (this.opts.logEveryMs ?? 5000);
    if (current >= this.opts.total) return; // the final line is drawn by done()
    if (now - this.lastDraw >= every) {
      this.lastDraw = now;
      this.draw(false);
    }
  }

  /** Advances by n. */
  tick(n = 1, fields?: Record<string, string | number>): void {
    this.update(this.current + n, fields);
  }

  done(fields?: Record<string, string | number>): void {
    if (this.finished) return;
    this.finished = true;
    if (fields) this.fields = { ...this.fields, ...fields };
    this.current = Math.max(this.current, this.opts.total);
    this.draw(true);
  }

  /** Seconds elapsed since the bar was created. */
  elapsed(): number {
    return (Date.now() - this.start) / 1000;
  }

  private draw(final: boolean): void {
    if (this.opts.quiet || process.env.LUMEN_QUIET === '1') return;
    const { total, label, unit = 'it' } = this.opts;
    const frac = total > 0 ? Math.min(1, this.current / total) : 1;
    const el = this.elapsed();
    const rate = el > 0 ? this.current / el : 0;
    const eta = rate > 0 ? (total - this.current) / rate : NaN;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const extra = Object.entries(this.fields).map(([k, v]) => `${k}=${typeof v === 'number' ? fmtNum(v) : v}`).join(' ');
    const line = `${label} ${bar} ${(frac * 100).toFixed(0).padStart(3)}% ${this.current}/${total} ${unit} ` +
      `[${fmtTime(el)}<${final ? '0s' : fmtTime(eta)}, ${fmtNum(rate)} ${unit}/s] ${extra}`;
    if (this.tty) this.stream.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    else this.stream.write(line + '\n');
  }
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.floor(s % 60).toString().padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60).toString().padStart(2, '0')}m`;
}

function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(a < 1 ? 4 : a < 100 ? 3 : 1);
}
