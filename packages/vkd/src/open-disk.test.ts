import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chainStatus } from '@q/backing';
import type { BlockDevice } from '@q/raw';
import { openDisk } from './open-disk.js';
import { guestSha256 } from './guest-sha256.js';

/** The committed fixtures, opened from disk with their backing chains and data files (no QEMU needed). */
const dir = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'images');

interface Answer {
  image: string;
  guestSha256: string;
  snapshotSha256: Record<string, string>;
  map: Array<Record<string, unknown>>;
}

const answers = readdirSync(dir)
  .filter((name) => name.endsWith('.json'))
  .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as Answer);


/**
 * qemu-img map's entries for a device, from the chain walk; `offset` is only given with a known host offset. The
 * answers describe the images as committed, with every stored byte in place: holes a checkout left in the files
 * (a sparse copy of the repository) are the file system's business, so they are folded back into data here.
 */
async function qemuMap(device: BlockDevice): Promise<Array<Record<string, unknown>>> {
  const entries: Array<{ start: number; length: number; depth: number; present: boolean; zero: boolean; data: boolean; offset?: number }> = [];
  for (const e of await chainStatus(device, 0, device.size)) {
    const entry = {
      start: e.offset,
      length: e.length,
      depth: e.depth,
      present: e.present,
      zero: e.hole === true ? false : e.zero,
      data: e.hole === true ? true : e.data,
      ...(e.hostOffset === undefined ? {} : { offset: e.hostOffset }),
    };
    const last = entries.at(-1);
    const continues =
      last !== undefined &&
      last.start + last.length === entry.start &&
      last.depth === entry.depth &&
      last.present === entry.present &&
      last.zero === entry.zero &&
      last.data === entry.data &&
      (last.offset === undefined ? entry.offset === undefined : last.offset + last.length === entry.offset);
    if (continues) last.length += entry.length;
    else entries.push(entry);
  }
  return entries;
}

describe('openDisk on the committed fixtures', () => {
  for (const answer of answers) {
    it(`${answer.image}: bytes and map match qemu-img`, async () => {
      const device = await openDisk(join(dir, answer.image));
      try {
        expect(await guestSha256(device)).toBe(answer.guestSha256);
        expect(await qemuMap(device)).toEqual(answer.map);
      } finally {
        await device.close();
      }
    });

    for (const [snapshot, sha] of Object.entries(answer.snapshotSha256)) {
      it(`${answer.image}@${snapshot}: FILE@SNAP reads the snapshot`, async () => {
        const device = await openDisk(`${join(dir, answer.image)}@${snapshot}`);
        try {
          expect(device.readOnly).toBe(true);
          expect(await guestSha256(device)).toBe(sha);
        } finally {
          await device.close();
        }
      });
    }
  }
});

describe('openDisk errors', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'q-vkd-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('names a missing snapshot', async () => {
    await expect(openDisk(`${join(dir, 'snapshots.qcow2')}@nope`)).rejects.toMatchObject({ code: 'E_NO_SUCH' });
  });

  it('treats a file whose name contains @ as a file', async () => {
    const path = join(scratch, 'disk@home.raw');
    writeFileSync(path, new Uint8Array(4096).fill(7));
    const device = await openDisk(path);
    expect(device.format).toBe('raw');
    expect(device.size).toBe(4096);
    await device.close();
  });

  it('opens anything without the qcow2 magic as raw', async () => {
    const path = join(scratch, 'plain.img');
    writeFileSync(path, new Uint8Array(1024).fill(1));
    const device = await openDisk(path);
    expect(device.format).toBe('raw');
    await device.close();
  });

  it('reports a missing backing file by name', async () => {
    const top = readFileSync(join(dir, 'chain-top.qcow2'));
    const path = join(scratch, 'orphan.qcow2');
    writeFileSync(path, top);
    await expect(openDisk(path)).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
      message: expect.stringContaining(`Could not open backing file '${join(scratch, 'chain-mid.qcow2')}'`),
    });
  });
});

describe("openDisk takes QEMU's image locks", () => {
  it('refuses a second writer and readers beside a writer, lets -U read, and frees the image at close', async () => {
    const scratchDir = mkdtempSync(join(tmpdir(), 'q-lock-'));
    try {
      const path = join(scratchDir, 'v3-64k.qcow2');
      writeFileSync(path, readFileSync(join(dir, 'v3-64k.qcow2')));
      const writer = await openDisk(path, { writable: true });
      await expect(openDisk(path, { writable: true })).rejects.toMatchObject({ code: 'E_LOCKED', message: expect.stringMatching(/^Failed to get "write" lock\n/) });
      // A qcow2 reader refuses writers (QEMU's qcow2 driver does), so it cannot open beside one; nor can cow mode.
      for (const options of [{}, { cow: true }]) {
        await expect(openDisk(path, options)).rejects.toMatchObject({ code: 'E_LOCKED', message: expect.stringMatching(/^Failed to get shared "write" lock\n/) });
      }
      await (await openDisk(path, { forceShare: true })).close();
      await (await openDisk(path, { locking: false })).close();
      await expect(openDisk(path, { forceShare: true, writable: true })).rejects.toMatchObject({ code: 'E_INVALID' });
      await writer.close();
      // Readers share with readers (and cow mode only reads the image).
      const readers = [await openDisk(path), await openDisk(path, { cow: true }), await openDisk(path)];
      await expect(openDisk(path, { writable: true })).rejects.toMatchObject({ code: 'E_LOCKED' });
      for (const reader of readers) await reader.close();
      const again = await openDisk(path, { writable: true });
      await again.close();
    } finally {
      rmSync(scratchDir, { recursive: true, force: true });
    }
  });
});

describe('openDisk in cow mode', () => {
  it('takes writes but leaves the image file unchanged, and leaves no overlay behind', async () => {
    const scratchDir = mkdtempSync(join(tmpdir(), 'q-cow-'));
    try {
      for (const name of ['v3-64k.qcow2', 'chain-base.raw']) {
        const path = join(scratchDir, name);
        writeFileSync(path, readFileSync(join(dir, name)));
        const before = createHash('sha256').update(readFileSync(path)).digest('hex');
        const disk = await openDisk(path, { cow: true });
        expect(disk.readOnly).toBe(false);
        const original = new Uint8Array(8192);
        await disk.read(original, 0);
        await disk.write(new Uint8Array(4096).fill(0x5c), 4096);
        const back = new Uint8Array(8192);
        await disk.read(back, 0);
        expect(back.subarray(0, 4096)).toEqual(original.subarray(0, 4096));
        expect(back.subarray(4096).every((b) => b === 0x5c)).toBe(true);
        await disk.flush();
        await disk.close();
        expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(before);
      }
      expect(readdirSync(tmpdir()).filter((entry) => entry.startsWith('qcow-cow-'))).toEqual([]);
    } finally {
      rmSync(scratchDir, { recursive: true, force: true });
    }
  });
  it('starts from a snapshot with FILE@SNAP: reads the snapshot, takes writes, changes nothing', async () => {
    const answer = JSON.parse(readFileSync(join(dir, 'snapshots.json'), 'utf8')) as { snapshotSha256: Record<string, string> };
    const scratchDir = mkdtempSync(join(tmpdir(), 'q-cow-'));
    try {
      const path = join(scratchDir, 'snapshots.qcow2');
      writeFileSync(path, readFileSync(join(dir, 'snapshots.qcow2')));
      const before = createHash('sha256').update(readFileSync(path)).digest('hex');
      const disk = await openDisk(`${path}@first`, { cow: true });
      expect(disk.readOnly).toBe(false);
      expect(await guestSha256(disk)).toBe(answer.snapshotSha256['first']);
      await disk.write(new Uint8Array(4096).fill(0x5c), 0);
      const back = new Uint8Array(4096);
      await disk.read(back, 0);
      expect(back.every((b) => b === 0x5c)).toBe(true);
      await disk.close();
      expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(before);
    } finally {
      rmSync(scratchDir, { recursive: true, force: true });
    }
  });
});
