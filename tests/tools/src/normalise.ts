import { qemuImg, run } from '@q/test-support';

/**
 * What may differ between qcow's and QEMU's output on the same input: the tool's name and the numbers of a timing
 * line ("512 bytes, 1 ops; 00.00 sec (1.2 MiB/sec and 2400.1 ops/sec)"). Everything else must match.
 */
export function normalise(text: string, names: Record<string, string> = {}): string {
  let out = text
    .replaceAll('qemu-img: ', 'TOOL: ')
    .replaceAll('qcow: ', 'TOOL: ')
    .replaceAll('qemu-io: ', 'TOOL: ')
    .replaceAll('qcow io: ', 'TOOL: ')
    .replace(/ops; [0-9:.]+( sec)? \([0-9.]+ (bytes|KiB|MiB|GiB|TiB)\/sec and [0-9.]+ ops\/sec\)/g, 'ops; TIME')
    // qemu-io -C: "bytes,ops,h:mm:ss.cc,bytes/sec,ops/sec".
    .replace(/(\d+),(\d+),\d+:\d\d:\d\d\.\d\d,[0-9.]+,[0-9.]+$/gm, '$1,$2,TIME');
  for (const [from, to] of Object.entries(names)) out = out.replaceAll(from, to);
  return out;
}

/** `qemu-img check` must find nothing wrong, and `qemu-img compare` must find the two images' contents equal. */
export function expectCleanAndEqual(image: string, expected: string): void {
  const check = run('qemu-img', ['check', image]);
  if (check.status !== 0) throw new Error(`qemu-img check ${image} exited ${check.status}: ${check.stdout}${check.stderr}`);
  qemuImg(['compare', image, expected]);
}
