/**
 * Worker thread of the parallel word count (see countWords in count.ts): counts the words of
 * the files it is given and posts back its table as transferable typed arrays.
 *
 * Messages to the parent: { bytes: n } as it reads, then { table: WordCountsSnapshot } or
 * { error: message }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WordCounter } from './count.ts';

const { files, pattern } = workerData as { files: string[]; pattern: string };
const port = parentPort!;
try {
  const counter = new WordCounter(pattern);
  for (const f of files) await counter.addFile(f, (n) => port.postMessage({ bytes: n }));
  const table = counter.snapshot();
  port.postMessage({ table }, [table.keys.buffer as ArrayBuffer, table.keyOff.buffer as ArrayBuffer, table.keyLen.buffer as ArrayBuffer, table.counts.buffer as ArrayBuffer]);
} catch (e) {
  port.postMessage({ error: (e as Error).message });
}
