// qemu:allocation-depth (-A) and qemu:dirty-bitmap:NAME (-B) on `qcow serve`, each compared with qemu-nbd 7.2
// serving a copy of the same image: the contexts nbdinfo lists, the maps nbdinfo and qemu-img read through each
// context, what LIST answers to queries, and qemu-nbd's messages for a bitmap it cannot export.
import { copyFileSync, openSync, closeSync, writeSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { HeaderExtensionType, qcow, qemuImg, qemuIo, readHeaderArea, run, runOk } from '@q/test-support';
import { startQemuNbd, type QemuNbdProcess } from './qemu-nbd-process.js';
import { NBD_OPT_LIST_META_CONTEXT, NBD_OPT_SET_META_CONTEXT, NBD_OPT_STRUCTURED_REPLY, NBD_REPLY_FLAG_DONE, RawNbdClient } from './raw-client.js';
import { serveScope } from './serve-scope.js';

const scope = serveScope('qcow-nbd-meta-');

/** qemu-nbd on a socket in the scratch directory, stopped after the test. */
async function qemuNbd(args: readonly string[]): Promise<{ uri: string; socket: string; stop: () => Promise<void> }> {
  const socket = scope.dir.path(`qemu-nbd-${Math.random().toString(36).slice(2)}.sock`);
  const server: QemuNbdProcess = await startQemuNbd(socket, args);
  stops.push(() => server.stop());
  return { uri: `nbd+unix:///?socket=${socket}`, socket, stop: () => server.stop() };
}
let stops: (() => Promise<void>)[] = [];
// Registered after serveScope's hooks, so it runs before them (after-hooks run in reverse): qemu-nbd stops before
// the scratch directory goes.
afterEach(async () => {
  for (const stop of stops) await stop();
  stops = [];
});

/** The contexts `nbdinfo --list` shows, in its order. */
function contexts(uri: string): string[] {
  const info = JSON.parse(runOk('nbdinfo', ['--json', uri])) as { exports: { contexts?: string[] }[] };
  return info.exports[0]?.contexts ?? [];
}

const nbdinfoMap = (uri: string, context: string): string => runOk('nbdinfo', [`--map=${context}`, uri]);

/** qemu-img map through the NBD client's x-dirty-bitmap, which reads any context's flags as base:allocation's. */
function qemuImgMap(socket: string, context: string): string {
  return runOk('qemu-img', ['map', '--output=json', '--image-opts', `driver=nbd,server.type=unix,server.path=${socket},x-dirty-bitmap=${context}`]);
}

/** Whether `nbdinfo --map` output has `offset` in a dirty extent. */
function dirtyAt(map: string, offset: number): boolean {
  return map.split('\n').some((line) => {
    const [start, length, flags] = line.trim().split(/\s+/).map(Number);
    return start !== undefined && length !== undefined && start <= offset && offset < start + length && flags === 1;
  });
}

/** Both maps of `context` through `qcow serve ARGS` and `qemu-nbd QEMU_ARGS`, each on its own copy of `image`. */
async function compareMaps(image: string, context: string, args: readonly string[], qemuArgs: readonly string[]): Promise<void> {
  const copy = scope.dir.path(`qemu-copy-${Math.random().toString(36).slice(2)}.qcow2`);
  copyFileSync(image, copy);
  const ours = await scope.serve(['-t', ...args, image]);
  const theirs = await qemuNbd([...qemuArgs, copy]);
  expect(contexts(ours.uri)).toEqual(contexts(theirs.uri));
  expect(nbdinfoMap(ours.uri, context)).toBe(nbdinfoMap(theirs.uri, context));
  const oursSocket = 'path' in ours.address ? ours.address.path : '';
  expect(qemuImgMap(oursSocket, context)).toBe(qemuImgMap(theirs.socket, context));
}

/**
 * base (4M): data, a zero cluster; middle (4M): data over part of base's; top (4M): data and a zero cluster over
 * a 1 MiB backing file under a 2 MiB one, so ranges lie past the end of each shorter backing file.
 */
function chains(): { top: string; long: string } {
  const path = (name: string): string => scope.dir.path(name);
  qemuImg(['create', '-q', '-f', 'qcow2', path('base.qcow2'), '4M']);
  qemuIo(path('base.qcow2'), ['write -P 1 0 1M', 'write -z 2M 512k']);
  qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', path('middle.qcow2')]);
  qemuIo(path('middle.qcow2'), ['write -P 2 512k 1M']);
  qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'middle.qcow2', '-F', 'qcow2', path('top.qcow2')]);
  qemuIo(path('top.qcow2'), ['write -P 3 1M 64k', 'write -z 3M 64k']);

  qemuImg(['create', '-q', '-f', 'qcow2', path('short.qcow2'), '1M']);
  qemuIo(path('short.qcow2'), ['write -P 7 0 64k']);
  qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'short.qcow2', '-F', 'qcow2', path('medium.qcow2'), '2M']);
  qemuIo(path('medium.qcow2'), ['write -P 8 1536k 64k']);
  qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'medium.qcow2', '-F', 'qcow2', path('long.qcow2'), '4M']);
  qemuIo(path('long.qcow2'), ['write -P 9 3M 64k']);
  return { top: path('top.qcow2'), long: path('long.qcow2') };
}

/** A 4 MiB image with bitmaps b1 (64 KiB granules) and b2 (128 KiB), dirtied by qemu-io writes after they were added. */
function bitmapImage(): string {
  const image = scope.dir.path('bitmaps.qcow2');
  qemuImg(['create', '-q', '-f', 'qcow2', image, '4M']);
  qemuImg(['bitmap', '--add', image, 'b1']);
  qemuImg(['bitmap', '--add', '-g', '128k', image, 'b2']);
  qemuIo(image, ['write -P 1 64k 64k', 'write -P 2 1000k 8k', 'write -z 3M 4k']);
  return image;
}

describe('qcow serve -A', () => {
  it('gives the same allocation depths as qemu-nbd -A over a chain with zero clusters and shorter backing files', async () => {
    const { top, long } = chains();
    await compareMaps(top, 'qemu:allocation-depth', ['-r', '-A'], ['-r', '-A']);
    await compareMaps(long, 'qemu:allocation-depth', ['-r', '-A'], ['-r', '-A']);
    await compareMaps(long, 'base:allocation', ['-r', '-A'], ['-r', '-A']);
  });

  it('counts the --cow overlay as the top layer, as qemu-nbd -s -A does', async () => {
    const { top } = chains();
    await compareMaps(top, 'qemu:allocation-depth', ['--cow', '-A'], ['-s', '-A']);
  });

  it('reports a raw file as one allocated layer', async () => {
    const raw = scope.dir.path('disk.raw');
    qemuImg(['create', '-q', '-f', 'raw', raw, '4M']);
    qemuIo(raw, ['write -P 1 1M 64k'], { format: 'raw' });
    await compareMaps(raw, 'qemu:allocation-depth', ['-r', '-A', '-f', 'raw'], ['-r', '-A', '-f', 'raw']);
  });
});

describe('qcow serve -B', () => {
  it('exports bitmaps made by qemu-img and dirtied by qemu-io as qemu-nbd -B does', async () => {
    const image = bitmapImage();
    for (const bitmap of ['b1', 'b2']) {
      await compareMaps(image, `qemu:dirty-bitmap:${bitmap}`, ['-r', '-A', '-B', 'b1', '-B', 'b2'], ['-r', '-A', '-B', 'b1', '-B', 'b2']);
    }
  });

  it('marks writes of the session in an enabled bitmap, but not in a disabled one, nor under --cow', async () => {
    for (const [ours, theirs, disabled] of [[[], [], false], [[], [], true], [['--cow'], ['-s'], false]] as const) {
      const image = bitmapImage();
      if (disabled) qemuImg(['bitmap', '--disable', image, 'b1']);
      const copy = scope.dir.path('bitmaps-copy.qcow2');
      copyFileSync(image, copy);
      const served = await scope.serve(['-t', ...ours, '-B', 'b1', image]);
      const qemu = await qemuNbd([...theirs, '-B', 'b1', copy]);
      for (const uri of [served.uri, qemu.uri]) runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 5 1M 4k', '-c', 'write -z 2M 200k', '-c', 'discard 3584k 64k', uri]);
      const map = nbdinfoMap(served.uri, 'qemu:dirty-bitmap:b1');
      expect(map).toBe(nbdinfoMap(qemu.uri, 'qemu:dirty-bitmap:b1'));
      // The write at 1 MiB shows only where the session marks b1.
      expect(dirtyAt(map, 1 << 20)).toBe(!disabled && ours.length === 0);
      await served.stop();
      await qemu.stop();
    }
  });

  it('finds a bitmap of the backing file, as qemu-nbd does', async () => {
    const image = bitmapImage();
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'bitmaps.qcow2', '-F', 'qcow2', scope.dir.path('overlay.qcow2')]);
    await compareMaps(scope.dir.path('overlay.qcow2'), 'qemu:dirty-bitmap:b2', ['-r', '-B', 'b2'], ['-r', '-B', 'b2']);
  });

  it('exports the bitmaps and depths of an image served at an internal snapshot, as qemu-nbd -l does', async () => {
    const image = bitmapImage();
    qemuImg(['snapshot', '-c', 's1', image]);
    qemuIo(image, ['write -P 6 2M 64k']);
    for (const context of ['qemu:dirty-bitmap:b1', 'qemu:allocation-depth']) {
      await compareMaps(image, context, ['-l', 's1', '-A', '-B', 'b1'], ['-l', 's1', '-A', '-B', 'b1']);
    }
  });

  it("refuses a bitmap the image does not have, and one left in use, with qemu-nbd's messages and exit code", () => {
    const image = bitmapImage();
    const inUse = scope.dir.path('in-use.qcow2');
    copyFileSync(image, inUse);
    // A writer killed while it had the image open leaves its bitmaps flagged in use.
    run('qemu-io', ['-f', 'qcow2', '-c', 'write 0 4k', '-c', 'sigraise 9', inUse]);
    const raw = scope.dir.path('disk.raw');
    qemuImg(['create', '-q', '-f', 'raw', raw, '1M']);
    for (const [args, message] of [
      [['-B', 'nope', image], "Bitmap 'nope' is not found"],
      [['-r', '-B', 'b1', '-B', 'nope', image], "Bitmap 'nope' is not found"],
      [['-f', 'raw', '-B', 'b1', raw], "Bitmap 'b1' is not found"],
      [['-B', 'b1', inUse], "Bitmap 'b1' is inconsistent and cannot be used"],
    ] as const) {
      const socket = scope.dir.path('refused.sock');
      const theirs = run('qemu-nbd', ['-k', socket, ...args], { timeoutMs: 20_000 });
      expect(theirs).toMatchObject({ status: 1, stderr: `qemu-nbd: ${message}\n` });
      const ours = qcow(['serve', '-k', socket, ...args], { timeoutMs: 20_000 });
      expect(ours).toMatchObject({ status: 1, stderr: `qcow: ${message}\n` });
    }
    // Nothing was written: qemu-img still sees the bitmaps as they were.
    expect(run('qemu-img', ['check', image]).status).toBe(0);
  });
});

describe('qcow serve -B on a damaged bitmap', () => {
  /** Overwrites `bytes` at `at` within the first bitmap directory entry of `image`. */
  function patchDirectoryEntry(image: string, at: number, bytes: Buffer): void {
    const extension = readHeaderArea(image).extensions.find((candidate) => candidate.type === HeaderExtensionType.bitmaps);
    const directoryOffset = Number(extension!.data.readBigUInt64BE(16));
    const fd = openSync(image, 'r+');
    writeSync(fd, bytes, 0, bytes.length, directoryOffset + at);
    closeSync(fd);
  }

  it('refuses it with one line and exit 1, never a crash or a huge allocation', () => {
    const image = bitmapImage();
    const farTable = Buffer.alloc(8);
    farTable.writeBigUInt64BE(1n << 40n);
    for (const [at, bytes, said] of [
      [0, farTable, /bitmap table at offset 1099511627776 .* runs past the end of the file/],
      [17, Buffer.from([40]), /granularity 2\^40 is out of range/],
      [8, Buffer.from([0, 0, 0, 5]), /table size 5 does not fit the image size/],
    ] as const) {
      const damaged = scope.dir.path('damaged.qcow2');
      copyFileSync(image, damaged);
      patchDirectoryEntry(damaged, at, bytes);
      const ours = qcow(['serve', '-r', '-k', scope.dir.path('damaged.sock'), '-B', 'b1', damaged], { timeoutMs: 20_000 });
      expect(ours.status).toBe(1);
      expect(ours.stderr).toMatch(said);
      expect(ours.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });
});

describe('NBD_OPT_LIST_META_CONTEXT queries', () => {
  it('answers each query with the contexts qemu-nbd lists', async () => {
    const image = bitmapImage();
    const copy = scope.dir.path('bitmaps-copy.qcow2');
    copyFileSync(image, copy);
    const served = await scope.serve(['-t', '-r', '-A', '-B', 'b1', '-B', 'b2', image]);
    const qemu = await qemuNbd(['-r', '-A', '-B', 'b1', '-B', 'b2', copy]);
    const queries = [[], ['base:'], ['qemu:'], ['qemu:dirty-bitmap:'], ['qemu:dirty-bitmap:b1', 'base:allocation', 'base:allocation'], ['nope:'], ['qemu'], ['qemu:allocation-depth:']];
    const listed = async (address: { path: string } | { port: number }): Promise<string[][]> => {
      const client = await RawNbdClient.open(address);
      await client.greet();
      await client.option(NBD_OPT_STRUCTURED_REPLY);
      const answers: string[][] = [];
      for (const query of queries) {
        const parts = [u32(0), u32(query.length), ...query.flatMap((text) => [u32(Buffer.byteLength(text)), Buffer.from(text)])];
        const replies = await client.option(NBD_OPT_LIST_META_CONTEXT, Buffer.concat(parts));
        answers.push(replies.filter((reply) => reply.type === 4).map((reply) => reply.data.toString('utf8', 4)));
      }
      client.destroy();
      return answers;
    };
    expect(await listed(served.address)).toEqual(await listed({ path: qemu.socket }));
  });
});

describe('BLOCK_STATUS with several contexts', () => {
  /** Per context name, the descriptors one BLOCK_STATUS of the whole export returns, and the chunks' flags. */
  async function statusByName(address: { path: string } | { port: number }, names: readonly string[], flags: number): Promise<{ byName: Record<string, number[][]>; chunkFlags: number[] }> {
    const client = await RawNbdClient.open(address);
    await client.greet();
    await client.option(NBD_OPT_STRUCTURED_REPLY);
    const parts = [u32(0), u32(names.length), ...names.flatMap((text) => [u32(Buffer.byteLength(text)), Buffer.from(text)])];
    const ids = new Map<number, string>();
    for (const reply of await client.option(NBD_OPT_SET_META_CONTEXT, Buffer.concat(parts))) {
      if (reply.type === 4) ids.set(reply.data.readUInt32BE(0), reply.data.toString('utf8', 4));
    }
    const size = await client.handshake({ structured: false, greet: false });
    client.send(7, 1n, 0, size, { flags });
    const byName: Record<string, number[][]> = {};
    const chunkFlags: number[] = [];
    for (const chunk of await client.reply()) {
      chunkFlags.push(chunk.flags);
      if (chunk.type !== 5) continue;
      const pairs: number[][] = [];
      for (let at = 4; at < chunk.payload.length; at += 8) pairs.push([chunk.payload.readUInt32BE(at), chunk.payload.readUInt32BE(at + 4)]);
      byName[ids.get(chunk.payload.readUInt32BE(0)) ?? '?'] = pairs;
    }
    client.destroy();
    return { byName, chunkFlags };
  }

  it('answers each selected context as qemu-nbd does, with and without REQ_ONE', async () => {
    // The bitmaps are the backing file's; -A then has two layers to tell apart.
    bitmapImage();
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'bitmaps.qcow2', '-F', 'qcow2', scope.dir.path('top.qcow2')]);
    qemuIo(scope.dir.path('top.qcow2'), ['write -P 3 2M 64k']);
    const copy = scope.dir.path('top-copy.qcow2');
    copyFileSync(scope.dir.path('top.qcow2'), copy);
    const served = await scope.serve(['-t', '-r', '-A', '-B', 'b1', '-B', 'b2', scope.dir.path('top.qcow2')]);
    const qemu = await qemuNbd(['-r', '-A', '-B', 'b1', '-B', 'b2', copy]);
    const names = ['qemu:dirty-bitmap:b1', 'base:allocation', 'qemu:allocation-depth', 'qemu:dirty-bitmap:b2'];
    for (const flags of [0, 1 << 3]) {
      const ours = await statusByName(served.address, names, flags);
      const theirs = await statusByName({ path: qemu.socket }, names, flags);
      expect(Object.keys(ours.byName).sort()).toEqual([...names].sort());
      expect(ours.byName).toEqual(theirs.byName);
      // One chunk per context, the last one final (qemu-nbd may end with a NONE chunk instead; both are valid).
      expect(ours.chunkFlags).toEqual([0, 0, 0, NBD_REPLY_FLAG_DONE]);
      if (flags !== 0) expect(Object.values(ours.byName).every((pairs) => pairs.length === 1)).toBe(true);
    }
  });
});

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}
