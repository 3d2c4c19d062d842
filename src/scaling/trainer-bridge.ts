/**
 * Where the scaling commands get their trainer. The lead replaces the body of `trainRun` with a
 * call into the real trainer (src/train/); until then it fails loudly rather than pretending.
 *
 * Contract: train `run.config` for `run.tokens` tokens with the study's fixed recipe (`ctx.recipe`;
 * `run.lr`, when set, overrides its learning rate — LR transfer sweeps), evaluate the
 * final validation loss on held-out data that is not in the training set, evaluate the automatically
 * checked capability task (per-problem pass rates, same problem order in every run), and report
 * the tokens and FLOPs actually used (flopsPerToken(config) × tokens trained).
 *
 * For the fits to mean anything every run must be a complete run of its own length: the learning-
 * rate schedule (warm-up, decay) is stretched to `run.tokens`, not cut from a longer schedule
 * (Hoffmann et al. showed truncated schedules bias the frontier), and the validation loss is
 * measured on enough held-out tokens that its noise stays well below 0.5%.
 */
import { LumenError } from '../util/errors.ts';
import type { PlannedRun } from './plan.ts';
import type { TrainOutcome } from './run.ts';

/** Context of a training run inside a study. */
export interface TrainContext {
  /** The study directory (for checkpoints and logs). */
  dir: string;
  /** The recipe every run of the study shares (plan.recipe; learning rate, batch, data paths…). */
  recipe: Record<string, unknown>;
}

/** Trains one planned run. */
export async function trainRun(run: PlannedRun, ctx: TrainContext): Promise<TrainOutcome> {
  throw new LumenError(`trainer not wired yet: cannot train run ${run.id} (width ${run.width}, ${run.tokens} tokens) for study ${ctx.dir}. ` +
    `src/scaling/trainer-bridge.ts must call the pretraining trainer; meanwhile use --synthetic to exercise the pipeline.`);
}
