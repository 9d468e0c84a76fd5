import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The store runs unchanged in browsers: no Node built-ins, no Buffer, in any file the main entry can reach. The
 * files for tests (the nginx launcher, qemu helpers, the tests themselves) are Node only by design.
 */
const NODE_ONLY = new Set(['nginx-server.ts', 'testing.ts', 'qemu-images.ts']);

describe('portability', () => {
  it('keeps node: imports and Buffer out of the store', () => {
    const dir = import.meta.dirname;
    const sources = readdirSync(dir).filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts') && !NODE_ONLY.has(name));
    expect(sources).toContain('http-file.ts');
    for (const name of sources) {
      const text = readFileSync(join(dir, name), 'utf8');
      expect(text, name).not.toMatch(/from\s+['"](node:|fs|path|http|https|net|tls|os|child_process)['"/]/);
      expect(text, name).not.toMatch(/\bBuffer\b/);
      expect(text, name).not.toMatch(/\bprocess\./);
    }
  });
});
