#!/usr/bin/env node
// The `tsswarm` executable: runs cli/main.ts through tsx's ESM loader, so the
// command works straight after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
