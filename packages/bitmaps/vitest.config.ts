import { defineConfig } from 'vitest/config';
import { unitSuite } from '../../vitest.shared.js';

export default defineConfig(unitSuite());
