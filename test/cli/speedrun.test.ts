import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/commands/speedrun.ts';
import { InputError } from '../../src/util/errors.ts';

test('speedrun: bad step counts are refused before any stage runs', async () => {
  const out = mkdtempSync(join(tmpdir(), 'lumen-sr-'));
  try {
    for (const [flag, v] of [['--pretrain-steps', '0'], ['--sft-steps', '2.5'], ['--pretrain-steps', 'many']]) {
      await assert.rejects(run(['--out', join(out, 'x'), '--skip-multimodal', flag!, v!]),
        (e: unknown) => e instanceof InputError && e.message.includes(flag!) && e.message.includes(`'${v}'`));
    }
    assert.equal(existsSync(join(out, 'x')), false, 'nothing was written');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
