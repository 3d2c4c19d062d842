/**
 * A deterministic model for tests: log likelihoods and generations come from functions the
 * test supplies, so every score can be computed by hand. Records every request it receives.
 */
import type { EvalModel, GenerateRequest, LoglikelihoodRequest, LoglikelihoodResult } from '../../src/eval/model.ts';

export interface FakeRules {
  /** log P(continuation | context). */
  loglik?: (context: string, continuation: string) => number;
  /** The generation for a request. */
  generate?: (req: GenerateRequest) => string;
}

export class FakeModel implements EvalModel {
  readonly name = 'fake';
  readonly supportsLoglikelihood: boolean;
  readonly loglikCalls: LoglikelihoodRequest[] = [];
  readonly generateCalls: GenerateRequest[] = [];

  constructor(private readonly rules: FakeRules) {
    this.supportsLoglikelihood = rules.loglik !== undefined;
  }

  async loglikelihood(reqs: LoglikelihoodRequest[]): Promise<LoglikelihoodResult[]> {
    this.loglikCalls.push(...reqs);
    return reqs.map((r) => ({ logprob: this.rules.loglik!(r.context, r.continuation), greedy: false, tokens: 1 }));
  }

  async generate(reqs: GenerateRequest[]): Promise<string[]> {
    this.generateCalls.push(...reqs);
    return reqs.map((r) => this.rules.generate!(r));
  }
}
