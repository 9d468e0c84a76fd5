import { describe, expect, it } from 'vitest';
import { MemoryBlockFile, type BlockFile } from '@q/raw';
import { defaultCreateOptions } from './create-image.js';
import { createQcow2 } from './create-qcow2.js';
import { portableCodecs } from './portable-codecs.js';
import { Qcow2Image } from './qcow2-image.js';

/**
 * Reads run outside the metadata lock, beside the writes that allocate L2 tables and clusters: whatever a read
 * finds published (an L1 entry, an L2 entry) must already be covered by the mapper's view of the file.
 */
describe('Qcow2Image with reads and allocating writes in flight together', () => {
  it('never reports a freshly allocated table or cluster as past the end of the file', async () => {
    const file = new MemoryBlockFile(new Uint8Array(0), { name: 'concurrent.qcow2' });
    const size = 1 << 30;
    // createQcow2 closes the file it is given: hand it one whose close keeps the bytes.
    const keepOpen: BlockFile = {
      name: file.name,
      capabilities: file.capabilities,
      read: (dst, offset) => file.read(dst, offset),
      write: (src, offset) => file.write(src, offset),
      flush: () => file.flush(),
      size: () => file.size(),
      truncate: (length) => file.truncate(length),
      close: async () => undefined,
    };
    await createQcow2(keepOpen, defaultCreateOptions(size));
    const image = await Qcow2Image.open(file, { name: 'concurrent.qcow2', writable: true, codecs: portableCodecs() });
    const l2Span = 512 << 20; // one L2 table of a 64 KiB-cluster image covers 512 MiB
    const requests: Promise<void>[] = [];
    for (let i = 0; i < 64; i++) requests.push(image.write(new Uint8Array(4096).fill(i + 1), (i % 2) * l2Span + i * 65536 * 3));
    // Reads of the same tables at every step of the allocations (each await lets them move one step on).
    for (let step = 0; step < 400; step++) {
      requests.push(image.read(new Uint8Array(4096), (step % 2) * l2Span + (step % 64) * 65536 * 3));
      await null;
    }
    await Promise.all(requests);
    for (let i = 0; i < 64; i++) {
      const back = new Uint8Array(4096);
      await image.read(back, (i % 2) * l2Span + i * 65536 * 3);
      expect(back.every((b) => b === i + 1)).toBe(true);
    }
    await image.close();
  });
});
