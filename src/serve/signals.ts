/**
 * Running a server until the process is told to stop: the first SIGTERM or SIGINT starts a
 * graceful shutdown (in-flight requests finish, up to the grace period, then streams end with an
 * error event and `data: [DONE]`); a second signal exits at once.
 */
import type { LumenServer } from './server.ts';

/** Resolves once the server has shut down after a signal. */
export function runUntilSignal(server: LumenServer, log: (msg: string) => void = (m) => console.error(m)): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: NodeJS.Signals) => {
      if (stopping) { log(`lumen serve: ${sig} again, exiting now`); process.exit(1); }
      stopping = true;
      log(`lumen serve: ${sig}: finishing in-flight requests (up to ${server.limits.shutdownGraceMs} ms)...`);
      server.shutdown().then(() => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        log('lumen serve: stopped');
        resolve();
      }, resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
