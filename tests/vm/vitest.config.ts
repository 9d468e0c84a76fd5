import { defineConfig, mergeConfig } from 'vitest/config';
import { oracleSuite } from '../../vitest.shared.js';

// One guest at a time: a TCG guest takes a whole core, and CI has two shared with another suite.
export default defineConfig(mergeConfig(oracleSuite(600_000), { test: { fileParallelism: false } }));
