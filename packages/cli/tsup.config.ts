import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared.js';

export default defineConfig([
  packageBuild(['src/cli.ts', 'src/compress-worker.ts'], { dts: false, target: 'node20', banner: { js: '#!/usr/bin/env node' } }),
  packageBuild(['src/index.ts'], { clean: false, target: 'node20' }),
]);
