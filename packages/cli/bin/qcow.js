#!/usr/bin/env node
// The `qcow` bin is this committed file, not dist/cli.js itself: pnpm links a workspace package's bins at
// install, before anything is built, and warned "Failed to create bin" for every package depending on @q/cli.
// A published tarball always has dist/ (the prepack guard refuses to pack without it); only an unbuilt
// checkout reaches the message below.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('qcow: @q/cli is not built yet (run `pnpm build` in the workspace)\n');
  process.exit(1);
}
await import(entry.href);
