import { createRequire } from 'node:module';

// dist/cli.js, the CLI's built entry (`node packages/cli/dist/cli.js ...`): the same program as the `qcow` bin,
// which it runs. The bin itself is CommonJS and starts 10-15 ms sooner, without Node's ES module loader.
createRequire(import.meta.url)('../bin/qcow.cjs');
