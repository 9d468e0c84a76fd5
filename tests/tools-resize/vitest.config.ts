import { defineConfig } from 'vitest/config';
import { oracleSuite } from '../../vitest.shared.js';

export default defineConfig(oracleSuite());
