import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Bytes of a committed fixture made by qemu-img (fixtures/images, see tools/fixtures/make-fixtures.sh). */
export function fixtureBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(import.meta.dirname, '..', '..', '..', 'fixtures', 'images', name)));
}
