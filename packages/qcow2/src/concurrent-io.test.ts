import { describe, expect, it } from 'vitest';
import { memoryImage } from './memory-image.js';

/**
 * Reads run outside the metadata lock, beside the writes that allocate L2 tables and clusters: whatever a read
 * finds published (an L1 entry, an L2 entry) must already be covered by the mapper's view of the file.
 */
describe('Qcow2Image with reads and allocating writes in flight together', () => {
  it('never reports a freshly allocated table or cluster as past the end of the file', async () => {
    const image = await memoryImage(1 << 30);
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
