import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { qcow, run, type Scratch } from '@q/test-support';

/**
 * Runs the same command with qemu-img and with qcow on two copies of the same input (made by `setup` in each
 * directory), then holds qcow to qemu-img's result: exit code, stdout, stderr (program name aside), and for an
 * image left behind its size, guest bytes (qemu-img compare), qemu-img info's JSON (file sizes and dates aside),
 * a clean qemu-img check, and the file's length.
 */
export function sideBySide(s: Scratch, tag: string, setup: (dir: string) => void, command: string, args: string[], o: { fileSize?: boolean; content?: boolean } = {}): void {
  const dirs = { qemu: s.path(`${tag}-q`), qcow: s.path(`${tag}-c`) };
  for (const dir of Object.values(dirs)) {
    mkdirSync(dir);
    setup(dir);
  }
  const theirs = run('qemu-img', [command, ...args], { cwd: dirs.qemu });
  const mine = qcow([command, ...args], { cwd: dirs.qcow });
  const prefixed = theirs.stderr.replace(/^qemu-img:/gm, 'qcow:');
  expect.soft(mine.status, `exit code; qcow said: ${mine.stderr}`).toBe(theirs.status);
  expect.soft(mine.stdout, 'stdout').toBe(theirs.stdout);
  if (theirs.status !== 0 && /Try 'qemu-img --help'/.test(theirs.stderr)) {
    expect.soft(mine.stderr.split('\n')[0], 'stderr').toBe(prefixed.split('\n')[0]);
  } else {
    expect.soft(mine.stderr, 'stderr').toBe(prefixed);
  }
  const image = 'img';
  if (!existsSync(join(dirs.qemu, image))) return;
  const info = (dir: string): Record<string, unknown> => {
    const json = JSON.parse(run('qemu-img', ['info', '-U', '--output=json', image], { cwd: dir }).stdout) as Record<string, unknown>;
    delete json['actual-size'];
    for (const snapshot of (json['snapshots'] as Array<Record<string, unknown>> | undefined) ?? []) {
      delete snapshot['date-sec'];
      delete snapshot['date-nsec'];
    }
    return json;
  };
  const theirInfo = info(dirs.qemu);
  expect.soft(info(dirs.qcow), 'qemu-img info').toEqual(theirInfo);
  // An image naming an external data file that does not exist (a renamed one) has no content to compare.
  if (o.content === false) return;
  const cmp = run('qemu-img', ['compare', '-U', join(dirs.qemu, image), join(dirs.qcow, image)]);
  expect.soft(cmp.status, `qemu-img compare: ${cmp.stdout}${cmp.stderr}`).toBe(0);
  if (theirInfo['format'] === 'qcow2') {
    const check = run('qemu-img', ['check', '-U', image], { cwd: dirs.qcow });
    expect.soft(check.status, `qemu-img check:\n${check.stdout}${check.stderr}`).toBe(0);
  }
  if (o.fileSize !== false) {
    expect.soft(statSync(join(dirs.qcow, image)).size, 'file size').toBe(statSync(join(dirs.qemu, image)).size);
  }
}

/** Shell-free setup helpers: qemu-img create and qemu-io writes in `dir`. */
export function made(createArgs: string[], ioCommands: string[] = [], after: string[][] = []): (dir: string) => void {
  return (dir) => {
    run('qemu-img', ['create', '-q', ...createArgs], { cwd: dir });
    // The image's own format (-f), not a backing file's (-F raw).
    const format = createArgs[createArgs.indexOf('-f') + 1] === 'raw' ? 'raw' : 'qcow2';
    if (ioCommands.length > 0) run('qemu-io', ['-f', format, ...ioCommands.flatMap((c) => ['-c', c]), 'img'], { cwd: dir });
    for (const args of after) run('qemu-img', args, { cwd: dir });
  };
}
