// Issue 14's incremental backup, within one `qcow serve -B` session: a full copy, guest writes through the server,
// then only the extents the bitmap marks dirty are copied over the full copy, and the result equals the image.
// (Across sessions it needs the engine to store bitmaps back: see issue 14.)
import { readFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { qemuImg, qemuIo, qemuRaw, runOk } from '@q/test-support';
import { RawNbdClient } from './raw-client.js';
import { serveScope } from './serve-scope.js';

const scope = serveScope('qcow-nbd-backup-');

interface MapEntry {
  offset: number;
  length: number;
  type: number;
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

    const client = await RawNbdClient.open(server.address);
    await client.handshake({ structured: true });
    const fd = openSync(backup, 'r+');
    try {
      for (const { offset, length } of dirty) {
        client.send(0, BigInt(offset), offset, length);
        writeSync(fd, (await client.readData(offset, length)).bytes, 0, length, offset);
      }
    } finally {
      closeSync(fd);
      client.destroy();
    }
    expect(await server.stop()).toBe(0);
    const expected = readFileSync(qemuRaw(image, scope.dir.path('disk.raw')));
    expect(readFileSync(backup).equals(expected)).toBe(true);
  });
});
