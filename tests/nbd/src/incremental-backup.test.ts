// Issue 14's incremental backup: a full copy, guest writes through the server, then only the extents the bitmap
// marks dirty are copied over the full copy, and the result equals the image. Within one `qcow serve -B` session,
// and across sessions (the writes in one, the engine storing the bitmap at its end, the copy from a read-only
// `qcow serve -B` later, whose map equals qemu-nbd -B's on the same file).
import { readFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { qemuImg, qemuIo, qemuRaw, runOk } from '@q/test-support';
import { startQemuNbd } from './qemu-nbd-process.js';
import { RawNbdClient } from './raw-client.js';
import { serveScope } from './serve-scope.js';

const scope = serveScope('qcow-nbd-backup-');

interface MapEntry {
  offset: number;
  length: number;
  type: number;
}

/** Reads `extents` from the export at `address` and writes them at the same offsets of `backup`. */
async function copyExtents(address: Parameters<typeof RawNbdClient.open>[0], extents: readonly MapEntry[], backup: string): Promise<void> {
  const client = await RawNbdClient.open(address);
  await client.handshake({ structured: true });
  const fd = openSync(backup, 'r+');
  try {
    for (const { offset, length } of extents) {
      client.send(0, BigInt(offset), offset, length);
      writeSync(fd, (await client.readData(offset, length)).bytes, 0, length, offset);
    }
  } finally {
    closeSync(fd);
    client.destroy();
  }
}

describe('incremental backup through qemu:dirty-bitmap', () => {
  it('copies only the dirty extents and ends with the image', async () => {
    const image = scope.dir.path('disk.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', image, '8M']);
    qemuIo(image, ['write -P 0x11 0 3M', 'write -P 0x22 5M 1M']);
    qemuImg(['bitmap', '--add', image, 'backup']);
    const server = await scope.serve(['-t', '-e', '0', '-B', 'backup', image]);

    const backup = scope.dir.path('backup.raw');
    runOk('nbdcopy', [server.uri, backup]);
    runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x33 1M 4k', '-c', 'write -z 5M 128k', '-c', 'write -P 0x44 7M 64k', server.uri]);

    const map = JSON.parse(runOk('nbdinfo', ['--json', '--map=qemu:dirty-bitmap:backup', server.uri])) as MapEntry[];
    const dirty = map.filter((entry) => entry.type === 1);
    expect(dirty.map(({ offset, length }) => [offset, length])).toEqual([
      [1 << 20, 64 << 10],
      [5 << 20, 128 << 10],
      [7 << 20, 64 << 10],
    ]);

    await copyExtents(server.address, dirty, backup);
    expect(await server.stop()).toBe(0);
    const expected = readFileSync(qemuRaw(image, scope.dir.path('disk.raw')));
    expect(readFileSync(backup).equals(expected)).toBe(true);
  });

  it('across sessions: the bitmap the engine stored at the end of a writing session', async () => {
    const image = scope.dir.path('sessions.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', image, '8M']);
    qemuIo(image, ['write -P 0x11 0 3M']);
    qemuImg(['bitmap', '--add', image, 'backup']);
    const backup = qemuRaw(image, scope.dir.path('sessions-full.raw'));

    const writer = await scope.serve(['-t', '-e', '0', image]);
    runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x33 1M 4k', '-c', 'write -z 2M 128k', '-c', 'write -P 0x44 6M 64k', writer.uri]);
    expect(await writer.stop()).toBe(0);
    expect(qemuImg(['info', image])).not.toMatch(/in-use/);

    const reader = await scope.serve(['-t', '-e', '0', '-r', '-B', 'backup', image]);
    const map = JSON.parse(runOk('nbdinfo', ['--json', '--map=qemu:dirty-bitmap:backup', reader.uri])) as MapEntry[];
    const socket = scope.dir.path('qemu-nbd.sock');
    const qemu = await startQemuNbd(socket, ['-r', '-B', 'backup', image]);
    try {
      expect(map).toEqual(JSON.parse(runOk('nbdinfo', ['--json', '--map=qemu:dirty-bitmap:backup', `nbd+unix:///?socket=${socket}`])));
    } finally {
      await qemu.stop();
    }
    const dirty = map.filter((entry) => entry.type === 1);
    expect(dirty.map(({ offset, length }) => [offset, length])).toEqual([
      [1 << 20, 64 << 10],
      [2 << 20, 128 << 10],
      [6 << 20, 64 << 10],
    ]);
    await copyExtents(reader.address, dirty, backup);
    expect(await reader.stop()).toBe(0);
    expect(readFileSync(backup).equals(readFileSync(qemuRaw(image, scope.dir.path('sessions.raw'))))).toBe(true);
  });
});
