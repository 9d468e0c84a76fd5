import { expect } from 'vitest';
import { qcow, qemuRaw, run } from '@q/test-support';
import { yieldTurn } from '@q/test-support/yield-setup';
import { ext4FileSums, type FileSums } from './ext4-files.js';

/**
 * What the host checks after every boot that wrote: both checkers find the qcow2 metadata clean (qemu-img check
 * is the oracle, `qcow check` ours), the guest bytes QEMU reads from the chain hold a clean ext4 (e2fsck -fn on a
 * raw conversion, so the file system is judged from the image, not from the guest's word), and the file sums
 * read back from that raw image.
 */
export async function checkedImage(image: string, rawPath: string, scratchDir: string): Promise<FileSums> {
  const check = run('qemu-img', ['check', image]);
  expect(check.status, `qemu-img check ${image}:\n${check.stdout}${check.stderr}`).toBe(0);
  await yieldTurn();
  const ours = qcow(['check', image], { timeoutMs: 300_000 });
  expect(ours.status, `qcow check ${image}:\n${ours.stdout}${ours.stderr}`).toBe(0);
  await yieldTurn();
  qemuRaw(image, rawPath);
  await yieldTurn();
  const fsck = run('e2fsck', ['-fn', rawPath]);
  expect(fsck.status, `e2fsck -fn of ${image} as raw:\n${fsck.stdout}${fsck.stderr}`).toBe(0);
  await yieldTurn();
  return ext4FileSums(rawPath, scratchDir);
}

/**
 * What the host checks after a writer was killed: leaks (exit 3: clusters allocated, not yet referenced) are what
 * a kill may leave, corruption (exit 2) is a bug. `qcow check` must classify as qemu-img does, and its repair must
 * leave an image qemu-img finds clean. Returns qemu-img's first verdict.
 */
export function checkAfterKill(image: string): number {
  const check = run('qemu-img', ['check', image]);
  expect([0, 3], check.stdout + check.stderr).toContain(check.status);
  const ours = qcow(['check', image], { timeoutMs: 300_000 });
  expect(ours.status, ours.stdout + ours.stderr).toBe(check.status);
  if (check.status === 3) {
    expect(qcow(['check', '-r', 'leaks', image]).status).toBe(0);
    const after = run('qemu-img', ['check', image]);
    expect(after.status, after.stdout + after.stderr).toBe(0);
  }
  return check.status;
}
