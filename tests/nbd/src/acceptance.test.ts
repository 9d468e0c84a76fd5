// Acceptance: real clients (qemu-img, qemu-io, nbdcopy) read and write through `qcow serve`, and QEMU's own view
// of the image file is the oracle. Every writing test stops the server (which flushes and closes the image), then
// runs `qemu-img check` and compares with `qemu-img compare`.
import { copyFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KiB, MiB, qemuImg, qemuIo, qemuRaw, run, runOk, sha256File, workload } from '@q/test-support';
import type { ServeProcess } from './nbd-server.js';
import { serveScope } from './serve-scope.js';

const scope = serveScope('qcow-nbd-accept-');

/** `qemu-img compare A B` must say identical (exit 0); the formats are given, nbd:// is always raw. */
function expectIdentical(a: string, aFormat: string, b: string, bFormat: string): void {
  const result = run('qemu-img', ['compare', '-f', aFormat, '-F', bFormat, a, b]);
  expect(result.status, `${result.stdout}${result.stderr}`).toBe(0);
  expect(result.stdout).toContain('Images are identical');
}

/**
 * Waits for the server to exit by itself after its one client (qemu-nbd's default: flush, close, exit 0), then
 * `qemu-img check` must find nothing.
 */
async function exitAndCheck(server: ServeProcess, image: string): Promise<void> {
  expect(await server.exited()).toBe(0);
  const check = run('qemu-img', ['check', image]);
  expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  expect(check.stdout).toContain('No errors were found');
  // No stack trace, no warning: a clean run of the server prints nothing.
  expect(server.stderr()).toBe('');
}

/**
 * A 48 MiB qcow2 overlay on a 32 MiB qcow2 base, data in both layers: overlay writes over base data, zero writes
 * and a discard hiding base data (zero flags), writes straddling and past the end of the shorter base.
 */
function backingChain(): { base: string; overlay: string } {
  const base = scope.dir.path('base.qcow2');
  const overlay = scope.dir.path('overlay.qcow2');
  qemuImg(['create', '-q', '-f', 'qcow2', base, '32M']);
  qemuIo(base, ['write -P 0x11 0 4M', 'write -P 0x12 8M 1M', 'write -z 12M 2M', 'write -P 0x13 20M 12345', 'write -P 0x14 30M 2M']);
  qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', overlay, '48M']);
  qemuIo(overlay, [
    'write -P 0x21 2M 4M',
    'write -z 8256k 128k',
    'discard 0 64k',
    'write -P 0x22 20971620 3000',
    'write -P 0x23 31M 2M',
    'write -P 0x24 40M 1M',
  ]);
  return { base, overlay };
}

describe('qcow serve: reads verified by qemu-img compare, qemu-io and nbdcopy', () => {
  it('a backing chain reads as QEMU reads the overlay', async () => {
    const { overlay } = backingChain();
    const server = await scope.serve(['-t', '-r', overlay]);
    expectIdentical(server.uri, 'raw', overlay, 'qcow2');
    // Ranges the sparse-read path answers with hole chunks (discarded, zeroed over base data, past the base's
    // end, never written), next to data from each layer.
    const reads = [
      'read -P 0 0 64k',
      'read -P 0x11 64k 1984k',
      'read -P 0x21 2M 4M',
      'read -P 0x12 8M 64k',
      'read -P 0 8256k 128k',
      'read -P 0x12 8384k 640k',
      'read -P 0 33M 7M',
      'read -P 0x24 40M 1M',
    ];
    runOk('qemu-io', ['-f', 'raw', '-r', ...reads.flatMap((command) => ['-c', command]), server.uri]);
    const copy = scope.dir.path('copy.raw');
    runOk('nbdcopy', [server.uri, copy]);
    expect(await sha256File(copy)).toBe(await sha256File(qemuRaw(overlay, scope.dir.path('reference.raw'))));
  });

  it('FILE@SNAP serves the snapshot as qemu-img convert -l reads it', async () => {
    const image = scope.dir.path('disk.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', image, '32M']);
    qemuIo(image, ['write -P 0x31 0 3M', 'write -P 0x32 10M 1M', 'write -z 16M 1M']);
    qemuImg(['snapshot', '-c', 'snap1', image]);
    // After the snapshot: overwrite, zero and discard what it holds, so the live image differs everywhere it can.
    qemuIo(image, ['write -P 0x41 1M 1M', 'write -z 10M 512k', 'discard 2M 1M', 'write -P 0x42 20M 1M']);
    const snapshotRaw = qemuRaw(image, scope.dir.path('snap1.raw'), ['-l', 'snapshot.name=snap1']);
    const server = await scope.serve(['-t', `${image}@snap1`]);
    expectIdentical(server.uri, 'raw', snapshotRaw, 'raw');
    expect(run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', server.uri, image]).status).toBe(1);
    runOk('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0x31 1M 2M', '-c', 'read -P 0x32 10M 1M', '-c', 'read -P 0 20M 1M', server.uri]);
  });
});

describe('qcow serve: writes by real clients, then check and compare', () => {
  /** A 24 MiB qcow2 image full of 0x5a, so whatever a client leaves as zeros must really be zeroed. */
  function filledTarget(name: string): string {
    const target = scope.dir.path(name);
    qemuImg(['create', '-q', '-f', 'qcow2', target, '24M']);
    qemuIo(target, ['write -P 0x5a 0 24M']);
    return target;
  }

  it('nbdcopy a sparse raw file into a served image', async () => {
    const source = scope.dir.path('source.raw');
    qemuImg(['create', '-q', '-f', 'raw', source, '24M']);
    qemuIo(source, ['write -P 0x61 0 1M', 'write -P 0x62 3M 12345', 'write -P 0x63 8M 4M', 'write -P 0x64 24575k 1k'], { format: 'raw' });
    const target = filledTarget('target.qcow2');
    const server = await scope.serve([target]);
    runOk('nbdcopy', ['--flush', source, server.uri]);
    await exitAndCheck(server, target);
    expectIdentical(source, 'raw', target, 'qcow2');
  });

  it('qemu-img convert -n writes a qcow2 source into a served image', async () => {
    const source = scope.dir.path('source.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', source, '24M']);
    qemuIo(source, ['write -P 0x71 0 2M', 'write -P 0x72 5M 300k', 'write -z 1M 512k', 'write -P 0x73 23M 1M']);
    const target = filledTarget('target.qcow2');
    const server = await scope.serve([target], 'tcp');
    runOk('qemu-img', ['convert', '-n', '-f', 'qcow2', '-O', 'raw', source, server.uri]);
    await exitAndCheck(server, target);
    expectIdentical(source, 'qcow2', target, 'qcow2');
  });

  it('a seeded random qemu-io workload over NBD leaves the same image as qemu-io on the file', async () => {
    // An overlay on a backing file, so writes also copy up from below and zeros/discards must hide base data.
    const { overlay } = backingChain();
    const direct = scope.dir.path('direct.qcow2');
    copyFileSync(overlay, direct);
    // The write tests' generator: hot windows where commands overlap (the start, with base data, and the tail past
    // the base's end), then commands spread over the whole disk; aligned, unaligned, single bytes, read-backs.
    const seed = 0x5eed;
    const shape = { size: 48 * MiB, clusterSize: 64 * KiB };
    const commands = [...workload(seed, { ...shape, count: 100 }), ...workload(seed + 1, { ...shape, count: 60, spread: true })];
    const asArgs = commands.flatMap((command) => ['-c', command]);

    // --discard=unmap: the workload's discards must reach the image as they do through qemu-io on the file.
    const server = await scope.serve(['--discard=unmap', overlay]);
    const overNbd = run('qemu-io', ['-f', 'raw', ...asArgs, server.uri]);
    expect(overNbd.status, `seed ${seed}: ${overNbd.stdout.slice(-500)}${overNbd.stderr}`).toBe(0);
    expect(overNbd.stdout).not.toMatch(/error|failed/i);
    // One "wrote/read/discard N/N bytes" line per command but flush: every command ran, none was refused.
    expect(overNbd.stdout.match(/^(wrote|read|discard) (\d+)\/\2 bytes/gm)).toHaveLength(commands.filter((c) => c !== 'flush').length);
    await exitAndCheck(server, overlay);

    const onFile = run('qemu-io', ['-f', 'qcow2', ...asArgs, direct]);
    expect(onFile.status, `seed ${seed}: ${onFile.stderr}`).toBe(0);
    expectIdentical(overlay, 'qcow2', direct, 'qcow2');
  });
});
