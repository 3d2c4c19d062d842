/** Child process of sigterm.test.ts: a server over the fake model, run until a signal. */
import { createServer } from '../../src/serve/server.ts';
import { runUntilSignal } from '../../src/serve/signals.ts';
import { FakeModel } from './fake-model.ts';

const server = createServer({ model: new FakeModel({ stepDelayMs: 2, noEnd: true }), limits: { shutdownGraceMs: Number(process.argv[2] ?? 5000) } });
const url = await server.listen(0, '127.0.0.1');
console.log(url);
await runUntilSignal(server, (m) => console.error(m));
process.exitCode = 0;
