import { describe, expect, it } from 'vitest';
import { certificateFixtures } from './certificate-fixtures.js';
import { mayIssueCrls } from './key-usage.js';

describe('mayIssueCrls', () => {
  for (const { file, der, answer } of certificateFixtures()) {
    it(`agrees with openssl on ${file}`, () => {
      expect(mayIssueCrls(der)).toBe(answer.mayIssueCrls);
    });
  }
});
