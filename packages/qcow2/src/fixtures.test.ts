import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { guestSha256 } from './test-guest-sha256.js';
import { MemoryBlockFile } from '@q/raw';
import { expectSameBytes } from '@q/raw/conformance';
import { portableCodecs } from './portable-codecs.js';
import { nodeCodecs } from './node-codecs.js';
import { Qcow2Image } from './qcow2-image.js';

/**
 * The committed fixtures (made by tools/fixtures/make-fixtures.sh with qemu-img) read through the engine from
 * memory, as a browser would: no QEMU, no file system below the engine. Each answer file holds the sha256 of the
 * guest bytes as `qemu-img convert -O raw` produced them.
 */
const dir = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'images');

interface Answer {
  image: string;
  guestSha256: string;
  snapshotSha256: Record<string, string>;
  info: { 'virtual-size': number; 'cluster-size': number; 'backing-filename'?: string; 'format-specific': { data: Record<string, unknown> } };
}

const answers = readdirSync(dir)
  .filter((name) => name.endsWith('.json'))
  .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as Answer)
  // Layers with a backing file or an external data file need the file system: @q/vkd tests those.
  .filter((answer) => answer.info['backing-filename'] === undefined && answer.info['format-specific'].data['data-file'] === undefined);

function open(answer: Answer, options: Parameters<typeof Qcow2Image.open>[1] = {}): Promise<Qcow2Image> {
  const bytes = new Uint8Array(readFileSync(join(dir, answer.image)));
  return Qcow2Image.open(new MemoryBlockFile(bytes, { name: answer.image, writable: false }), options);
}

describe('committed fixtures read from memory', () => {
  it('has fixtures to read', () => expect(answers.length).toBeGreaterThanOrEqual(8));

  for (const answer of answers) {
    it(`${answer.image}: guest bytes match qemu-img (portable codecs)`, async () => {
      const image = await open(answer, { codecs: portableCodecs() });
      expect(image.size).toBe(answer.info['virtual-size']);
      expect(image.metadata.geometry.clusterSize).toBe(answer.info['cluster-size']);
      expect(await guestSha256(image)).toBe(answer.guestSha256);
      await image.close();
    });

    it(`${answer.image}: guest bytes match qemu-img (node codecs)`, async () => {
      const image = await open(answer, { codecs: nodeCodecs() });
      expect(await guestSha256(image)).toBe(answer.guestSha256);
      await image.close();
    });

    for (const [snapshot, sha] of Object.entries(answer.snapshotSha256)) {
      it(`${answer.image}@${snapshot}: snapshot bytes match qemu-img`, async () => {
        const image = await open(answer, { codecs: portableCodecs(), snapshot });
        expect(await guestSha256(image)).toBe(sha);
        await image.close();
      });
    }
  }

  it('reads unaligned ranges that cross cluster and subcluster boundaries', async () => {
    for (const answer of answers) {
      const image = await open(answer, { codecs: nodeCodecs() });
      const whole = new Uint8Array(image.size);
      await image.read(whole, 0);
      for (const [offset, length] of [[1, 511], [4095, 2], [65535, 70000], [33 * 1024 - 7, 9000], [image.size - 3, 3]] as const) {
        if (offset + length > image.size) continue;
        const part = new Uint8Array(length);
        await image.read(part, offset);
        expectSameBytes(part, whole.subarray(offset, offset + length), `${answer.image} at ${offset}`);
      }
      await image.close();
    }
  });

  it('reads compressed clusters with the default codecs when none were given', async () => {
    const compressed = answers.filter((a) => a.info['format-specific'].data['compression-type'] === 'zstd' || a.image.startsWith('zlib'));
    expect(compressed.length).toBeGreaterThanOrEqual(2);
    for (const answer of compressed) {
      const image = await open(answer);
      expect(await guestSha256(image)).toBe(answer.guestSha256);
      await image.close();
    }
  });
});
