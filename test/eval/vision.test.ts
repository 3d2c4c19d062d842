import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateVision, normaliseAnswer } from '../../src/eval/vision.ts';
import { VisualDataset } from '../../src/data/visual/index.ts';
import type { MultimodalModel, ContentPart } from '../../src/models/multimodal.ts';

/** A stand-in model that always answers `answer` and records the order of each prompt's parts. */
function fakeModel(answer: string, orders: string[]): MultimodalModel {
  return {
    config: { vision: { imageSize: 24 } },
    answerBatch(prompts: ContentPart[][]): string[] {
      for (const p of prompts) orders.push(p.map((c) => c.type).join(','));
      return prompts.map(() => ` ${answer.toUpperCase()}.`);
    },
  } as unknown as MultimodalModel;
}

test('vision eval: exact-match accuracy per task and split, mistakes kept, prompt order as trained', async () => {
  const n = 40;
  const truth = async (split: 'heldout' | 'compositional') =>
    (await new VisualDataset({ tasks: ['color'], split, seed: 5, size: 24 }).batch(0, n)).filter((s) => s.answer === 'red').length / n;
  for (const placement of ['first', 'last'] as const) {
    const orders: string[] = [];
    const r = await evaluateVision(fakeModel('red', orders), { tasks: ['color'], n, seed: 5, batchSize: 16, imagePlacement: placement, keepMistakes: 2 });
    // answers are normalised (case, spaces, a final full stop) before the exact match
    const [th, tc] = [await truth('heldout'), await truth('compositional')];
    assert.ok(th > 0 && th < 1 && tc > 0 && tc < 1, 'the samples mix red and other answers');
    assert.equal(r.tasks['color/heldout']!.accuracy, th);
    assert.equal(r.tasks['color/compositional']!.accuracy, tc);
    assert.equal(r.tasks['color/heldout']!.n, n);
    assert.ok(r.mistakes['color/heldout']!.length <= 2);
    for (const m of r.mistakes['color/heldout']!) assert.notEqual(m.answer, 'red');
    assert.equal(orders.length, 2 * n);
    assert.ok(orders.every((o) => o === (placement === 'last' ? 'text,image' : 'image,text')), `${placement}: ${orders[0]}`);
  }
  assert.equal(normaliseAnswer('  Red. '), 'red');
});
