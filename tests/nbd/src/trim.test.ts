import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MiB, qemuImg, qemuIo, run, runOk, scratch, type Scratch } from '@q/test-support';
import { startServe, type ServeProcess } from './nbd-server.js';

/**
 * A client's TRIM over NBD gives the image's space back while `qcow serve` runs, as with qemu-nbd: the trimmed
 * clusters become holes at the client's flush (qemu-io flushes when it closes). On a disk file system
 * (os.tmpdir(): auto serves from the cothread) and on tmpfs (/dev/shm: from the event loop).
 */
const places = [
  { label: 'a disk file system', make: (): string => mkdtempSync(join(tmpdir(), 'qcow-nbd-trim-')) },
  { label: 'tmpfs', make: (): string => scratch('qcow-nbd-trim-').dir },
];

let sockets: Scratch;
let dir: string;
let servers: ServeProcess[] = [];

afterEach(async () => {
  for (const server of servers) await server.stop();
  servers = [];
  sockets.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const used = (path: string): number => statSync(path).blocks * 512;

async function serve(args: readonly string[]): Promise<ServeProcess> {
  // -t: stay up for more than one client (qemu-nbd's --persistent); --discard=unmap: TRIM reaches the image (the
  // default, as qemu-nbd's, ignores it).
  const server = await startServe(['-t', '--discard=unmap', ...args], { socket: join(sockets.dir, `nbd-${servers.length}.sock`) });
  servers.push(server);
  return server;
}

describe.each(places)('NBD TRIM through qcow serve on $label', (place) => {
  beforeEach(() => {
    sockets = scratch('qcow-nbd-trim-sock-');
    dir = place.make();
  });

  it('qcow2: du drops by what the client trimmed, check is clean, the rest reads the same', async () => {
    const image = join(dir, 'disk.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', image, '64M']);
    qemuIo(image, ['write -P 0x11 0 16M', 'write -P 0x22 16M 16M']);
    const server = await serve([image]);
    const before = used(image);
    runOk('qemu-io', ['-f', 'raw', '-c', 'discard 0 16M', server.uri]);
    // While it still serves: the client's flush at close punched the holes.
    expect(before - used(image)).toBeGreaterThanOrEqual(0.9 * 16 * MiB);
    runOk('qemu-io', ['-f', 'raw', '-c', 'read -P 0 0 16M', '-c', 'read -P 0x22 16M 16M', '-c', 'write -z -u 16M 8M', '-c', 'flush', server.uri]);
    expect(before - used(image)).toBeGreaterThanOrEqual(0.9 * 24 * MiB);
    expect(await server.stop()).toBe(0);
    servers = [];
    const check = run('qemu-img', ['check', image]);
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const reference = join(dir, 'reference.raw');
    qemuImg(['create', '-q', '-f', 'raw', reference, '64M']);
    qemuIo(reference, ['write -P 0x22 24M 8M'], { format: 'raw' });
    const compare = run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', reference, image]);
    expect(compare.status, compare.stdout + compare.stderr).toBe(0);
  });

  it('raw: TRIM punches the file; nbdinfo --map then shows the hole, as qemu-nbd does', async () => {
    const image = join(dir, 'disk.raw');
    qemuImg(['create', '-q', '-f', 'raw', image, '32M']);
    qemuIo(image, ['write -P 0x33 0 32M'], { format: 'raw' });
    const server = await serve(['-f', 'raw', image]);
    const before = used(image);
    runOk('qemu-io', ['-f', 'raw', '-c', 'discard 4M 8M', server.uri]);
    expect(before - used(image)).toBeGreaterThanOrEqual(0.9 * 8 * MiB);
    const ours = runOk('nbdinfo', ['--map', server.uri]);
    expect(await server.stop()).toBe(0);
    servers = [];
    const socket = join(sockets.dir, 'qemu-nbd.sock');
    const qemu = run('qemu-nbd', ['--fork', '-r', '-f', 'raw', '-k', socket, image]);
    expect(qemu.status, qemu.stderr).toBe(0);
    expect(ours).toBe(runOk('nbdinfo', ['--map', `nbd+unix:///?socket=${socket}`]));
    qemuIo(image, ['read -P 0x33 0 4M', 'read -P 0 4M 8M', 'read -P 0x33 12M 20M'], { format: 'raw' });
  });
});
