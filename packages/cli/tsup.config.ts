import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared.js';
import { workspaceSources } from '../../tsup.workspace-sources.js';

export default defineConfig([
  // The `qcow` program: the @q packages are inlined from their sources and split into a chunk set per command, so
  // `qcow info` loads one command's code in a few files instead of resolving and loading twenty packages (tens of
  // ms of a start that qemu-img's whole run is compared with). @q/posix stays a package: it finds koffi from its
  // own place in node_modules. vkd's cothread worker is built here too, as CothreadDisk, now inlined, looks for
  // it next to itself.
  packageBuild([], {
    entry: {
      cli: 'src/cli.ts',
      'compress-worker': 'src/compress-worker.ts',
      'cothread-worker': '../vkd/src/cothread-worker.ts',
    },
    dts: false,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    noExternal: [/^@q\/(?!posix$)/],
    esbuildPlugins: [workspaceSources(['@q/posix'])],
  }),
  // The library entry (`main` for programs that embed the CLI) keeps importing the @q packages, sharing them with
  // the program that imports it.
  packageBuild(['src/index.ts'], { clean: false, target: 'node20' }),
]);
