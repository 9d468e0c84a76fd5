import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared.js';

// `testing` (the nginx launcher) is Node-only and for tests; the main entry runs in browsers too.
export default defineConfig(packageBuild(['src/index.ts', 'src/testing.ts']));
