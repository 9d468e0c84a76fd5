import { defineConfig } from 'vitest/config';
import { oracleSuite } from '../../vitest.shared.js';

// Crash tests replay thousands of crash points, each checked by qemu-img: a longer timeout per test.
export default defineConfig(oracleSuite(600_000));
