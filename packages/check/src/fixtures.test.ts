import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkExitCode, checkImage, formatCheckHuman, formatCheckJson } from './index.js';
import { FIXTURES, fixtureFile } from './test-image.js';

/**
 * The committed fixtures (tools/fixtures/make-fixtures.sh) are clean, and each answer file holds what
 * `qemu-img check --output=json` said about it: the check must agree key for key, from memory, without QEMU.
 */
interface Answer {
  image: string;
  check: Record<string, number | string>;
}

const answers = readdirSync(FIXTURES)
  .filter((name) => name.endsWith('.json'))
  .map((name) => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as Answer);

describe('check of the committed fixtures', () => {
  it('has fixtures with check answers', () => {
    expect(answers.length).toBeGreaterThanOrEqual(10);
    for (const answer of answers) expect(answer.check, answer.image).toBeDefined();
  });

  for (const answer of answers) {
    it(`${answer.image}: clean, with qemu-img's statistics`, async () => {
      const report = await checkImage(fixtureFile(answer.image, false));
      expect(report.messages).toEqual([]);
      expect(checkExitCode(report)).toBe(0);
      expect(JSON.parse(formatCheckJson(report))).toEqual({ ...answer.check, filename: answer.image });
      // The JSON text itself: qemu-img's key order, 4-space indentation.
      const keys = Object.keys(JSON.parse(formatCheckJson(report)) as object);
      expect(keys.indexOf('image-end-offset')).toBe(0);
      expect(formatCheckHuman(report).split('\n')[0]).toBe('No errors were found on the image.');
    });

    it(`${answer.image}: repairing a clean image changes nothing`, async () => {
      const file = fixtureFile(answer.image);
      const before = file.contents().slice();
      for (const repair of ['leaks', 'all'] as const) {
        const report = await checkImage(file, { repair });
        expect(report.repaired).toBeUndefined();
        expect(checkExitCode(report)).toBe(0);
      }
      expect(Buffer.from(file.contents()).equals(Buffer.from(before))).toBe(true);
    });
  }
});
