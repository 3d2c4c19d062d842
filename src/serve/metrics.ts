/**
 * Server metrics in the Prometheus text exposition format (version 0.0.4): counters,
 * histograms with cumulative buckets, and gauges read live when scraped.
 */

type Labels = Record<string, string>;

function labelText(l: Labels): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** A counter with optional labels. */
export class Counter {
  private readonly values = new Map<string, { labels: Labels; v: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = labelText(labels);
    const e = this.values.get(k);
    if (e) e.v += by; else this.values.set(k, { labels, v: by });
  }
  get(labels: Labels = {}): number { return this.values.get(labelText(labels))?.v ?? 0; }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) out.push(`${this.name} 0`);
    for (const { labels, v } of this.values.values()) out.push(`${this.name}${labelText(labels)} ${v}`);
    return out;
  }
}

/** A histogram over fixed upper bounds (seconds). */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private n = 0;
  constructor(readonly name: string, readonly help: string, readonly bounds: number[]) {
    this.counts = new Array(bounds.length).fill(0);
  }
  observe(x: number): void {
    if (!Number.isFinite(x)) return;
    this.sum += x; this.n++;
    for (let i = 0; i < this.bounds.length; i++) if (x <= this.bounds[i]!) this.counts[i]!++;
  }
  get count(): number { return this.n; }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.bounds.forEach((b, i) => out.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`));
    out.push(`${this.name}_bucket{le="+Inf"} ${this.n}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.n}`);
    return out;
  }
}

/** A gauge whose value is read when scraped. */
export class Gauge {
  constructor(readonly name: string, readonly help: string, private readonly read: () => number) {}
  render(): string[] { return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${this.read()}`]; }
}

/** The server's metrics. */
export class ServerMetrics {
  readonly requests = new Counter('lumen_requests_total', 'HTTP requests by endpoint and status code.');
  readonly promptTokens = new Counter('lumen_prompt_tokens_total', 'Prompt positions processed (an image counts as its positions).');
  readonly generatedTokens = new Counter('lumen_generation_tokens_total', 'Tokens generated.');
  readonly cancelled = new Counter('lumen_requests_cancelled_total', 'Generations cancelled before finishing (client gone, timeout, shutdown).');
  readonly ttft = new Histogram('lumen_time_to_first_token_seconds', 'Time from request admission to the first generated token.',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
  readonly tokenLatency = new Histogram('lumen_time_per_output_token_seconds', 'Time between consecutive generated tokens of one request.',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
  private readonly gauges: Gauge[];

  constructor(live: { queueDepth: () => number; activeSequences: () => number }) {
    this.gauges = [
      new Gauge('lumen_queue_depth', 'Requests waiting for a sequence slot.', live.queueDepth),
      new Gauge('lumen_active_sequences', 'Sequences in the running batch.', live.activeSequences),
    ];
  }

  /** The exposition text. */
  render(): string {
    return [
      ...this.requests.render(), ...this.promptTokens.render(), ...this.generatedTokens.render(), ...this.cancelled.render(),
      ...this.ttft.render(), ...this.tokenLatency.render(), ...this.gauges.flatMap((g) => g.render()),
    ].join('\n') + '\n';
  }
}
