#!/usr/bin/env node
// Entry point of the `lumen` CLI. Sources are TypeScript run through tsx's loader,
// so there is no separate build step between editing and running.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
