import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared.js';
import { workspaceSources } from '../../tsup.workspace-sources.js';

export default defineConfig([
  // The `qcow` program: one CommonJS file with the @q packages inlined from their sources, run by bin/qcow.cjs
  // through a V8 code cache that `pnpm build` makes next to it (scripts/build-code-cache.mjs). A command's modules
  // are still evaluated only when it runs (esbuild wraps each lazily imported module), but nothing is resolved,
  // parsed or compiled at start: Node 20 caches no ES module code, so the program is CommonJS. Dynamic imports
  // become requires (a vm.Script has no loader for import()); @q/posix is inlined too (it is ESM-only, which a
  // CommonJS file cannot require), which is why koffi is an (optional, as there) dependency of this package.
  {
    entry: { qcow: 'src/program.ts' },
    format: ['cjs'],
    outExtension: () => ({ js: '.cjs' }),
    platform: 'node',
    target: 'node20',
    dts: false,
    clean: true,
    splitting: false,
    shims: true,
    minify: true,
    // No keepNames: it wraps every function and class in a defineProperty call at evaluation (about 750 of them),
    // which cost `qcow info` ~7 ms at start (100.0 -> 92.9 ms wall, medians of 15; the cache shrinks 679 -> 637 KiB).
    // Errors carry their own `name` fields, and nothing reads a function's name.
    keepNames: false,
    noExternal: [/^@q\//],
    esbuildPlugins: [workspaceSources()],
    esbuildOptions(options) {
      options.supported = { ...options.supported, 'dynamic-import': false };
    },
  },
  // dist/cli.js, the documented entry, which runs the bin; and the worker threads, which load ES modules by URL:
  // vkd's cothread worker (CothreadDisk, inlined in the program, looks for it next to itself) and the compression
  // worker.
  packageBuild([], {
    entry: {
      cli: 'src/cli.ts',
      'compress-worker': 'src/compress-worker.ts',
      'cothread-worker': '../vkd/src/cothread-worker.ts',
    },
    dts: false,
    clean: false,
    target: 'node20',
    noExternal: [/^@q\/(?!posix$)/],
    esbuildPlugins: [workspaceSources(['@q/posix'])],
  }),
  // The library entry (`main` for programs that embed the CLI) keeps importing the @q packages, sharing them with
  // the program that imports it.
  packageBuild(['src/index.ts'], { clean: false, target: 'node20' }),
]);
