import { spawn, type ChildProcess } from 'node:child_process';
import { QCOW_CLI, requireTool } from '@q/test-support';
import { waitForLocks } from './proc-locks.js';

/** A process holding an image open (and locked) until stopped. */
export interface Holder {
  readonly label: string;
  stop(): Promise<void>;
}

/** One way to hold an image: the command for QEMU's tool and for ours (or none), and the bytes it locks. */
export interface HolderMode {
  name: string;
  /** Where the held bytes appear (the image, or the backing file/data file of it). */
  lockedFile: 'image' | 'base' | 'data' | 'raw';
  /** The lock bytes the holder leaves on that file, as QEMU's tool leaves them. */
  bytes: string[];
  qemu: (image: string, socket: string) => [string, string[]];
  qcow?: (image: string, socket: string) => string[];
}

const HOLD_MS = '600000';

export const HOLDER_MODES: HolderMode[] = [
  {
    name: 'read-write (qemu-io | qcow io)',
    lockedFile: 'image',
    bytes: ['100-101', '103', '201', '203'],
    qemu: (image) => ['qemu-io', ['-c', `sleep ${HOLD_MS}`, image]],
    qcow: (image) => ['io', '-c', `sleep ${HOLD_MS}`, image],
  },
  {
    name: 'read-only (-r)',
    lockedFile: 'image',
    bytes: ['100', '201', '203'],
    qemu: (image) => ['qemu-io', ['-r', '-c', `sleep ${HOLD_MS}`, image]],
    qcow: (image) => ['io', '-r', '-c', `sleep ${HOLD_MS}`, image],
  },
  {
    name: 'force-share (-r -U)',
    lockedFile: 'image',
    bytes: ['100'],
    qemu: (image) => ['qemu-io', ['-r', '-U', '-c', `sleep ${HOLD_MS}`, image]],
    qcow: (image) => ['io', '-r', '-U', '-c', `sleep ${HOLD_MS}`, image],
  },
  {
    name: 'NBD export read-write (qemu-nbd | qcow serve)',
    lockedFile: 'image',
    bytes: ['100-101', '103', '201', '203'],
    qemu: (image, socket) => ['qemu-nbd', ['-k', socket, image]],
    qcow: (image, socket) => ['serve', '-k', socket, image],
  },
  {
    name: 'NBD export read-only (-r)',
    lockedFile: 'image',
    bytes: ['100', '201', '203'],
    qemu: (image, socket) => ['qemu-nbd', ['-r', '-k', socket, image]],
    qcow: (image, socket) => ['serve', '-r', '-k', socket, image],
  },
  {
    name: 'NBD export copy-on-write (qemu-nbd -s | qcow serve --cow)',
    lockedFile: 'image',
    bytes: ['100', '201', '203'],
    qemu: (image, socket) => ['qemu-nbd', ['-s', '-k', socket, image]],
    qcow: (image, socket) => ['serve', '--cow', '-k', socket, image],
  },
  {
    name: 'an overlay opened read-write holds its backing file',
    lockedFile: 'base',
    bytes: ['100', '201', '203'],
    qemu: (image) => ['qemu-io', ['-c', `sleep ${HOLD_MS}`, overlayOf(image)]],
    qcow: (image) => ['io', '-c', `sleep ${HOLD_MS}`, overlayOf(image)],
  },
  {
    name: 'an image with an external data file, read-write: the data file',
    lockedFile: 'data',
    bytes: ['100-101', '103', '203'],
    qemu: (image) => ['qemu-io', ['-c', `sleep ${HOLD_MS}`, withDataFile(image)]],
    qcow: (image) => ['io', '-c', `sleep ${HOLD_MS}`, withDataFile(image)],
  },
  {
    name: 'a raw image read-write: raw shares what its user shares',
    lockedFile: 'raw',
    bytes: ['100-101'],
    qemu: (image) => ['qemu-io', ['-f', 'raw', '-c', `sleep ${HOLD_MS}`, rawOf(image)]],
    qcow: (image) => ['io', '-f', 'raw', '-c', `sleep ${HOLD_MS}`, rawOf(image)],
  },
  {
    name: 'a raw image exported read-write: an export refuses resize',
    lockedFile: 'raw',
    bytes: ['100-101', '203'],
    qemu: (image, socket) => ['qemu-nbd', ['-f', 'raw', '-k', socket, rawOf(image)]],
    qcow: (image, socket) => ['serve', '-f', 'raw', '-k', socket, rawOf(image)],
  },
  {
    name: 'a paused VM (qemu-system, virtio-blk) read-write',
    lockedFile: 'image',
    bytes: ['100-101', '103', '201', '203'],
    qemu: (image) => [
      'qemu-system-x86_64',
      ['-nodefaults', '-display', 'none', '-S', '-machine', 'q35,accel=tcg', '-m', '64', '-drive', `file=${image},if=none,id=d0,format=qcow2`, '-device', 'virtio-blk-pci,drive=d0'],
    ],
  },
];

/** The overlay the fixture makes over `image` (see lock-fixture.ts). */
export function overlayOf(image: string): string {
  return image.replace(/\.qcow2$/, '.overlay.qcow2');
}

/** The raw image beside `image` (see lock-fixture.ts). */
export function rawOf(image: string): string {
  return image.replace(/\.qcow2$/, '.raw');
}

/** The qcow2 image whose external data file is `image`'s companion (see lock-fixture.ts). */
export function withDataFile(image: string): string {
  return image.replace(/\.qcow2$/, '.with-data.qcow2');
}

/** Starts a holder and waits until /proc/locks shows its bytes on `lockedPath`. */
export async function startHolder(command: string, args: string[], label: string, lockedPath: string, bytes: string[]): Promise<Holder> {
  requireTool(command);
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForLocks(lockedPath, bytes, () => child.exitCode === null && child.signalCode === null);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`${label}: ${error instanceof Error ? error.message : String(error)} ${stderr}`);
  }
  return {
    label,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export function startQcowHolder(args: string[], label: string, lockedPath: string, bytes: string[]): Promise<Holder> {
  return startHolder(process.execPath, [QCOW_CLI, ...args], label, lockedPath, bytes);
}
