import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PERMISSION } from './image-lock.js';
import { openNodeFile } from './node-file.js';

const { consistentRead, write, resize } = PERMISSION;
/** The sets QEMU takes on a qcow2 image's file and on a data file (@q/vkd's lock model derives them). */
const IMAGE_LOCKS = {
  readWrite: { take: consistentRead | write | resize, unshare: write | resize },
  readOnly: { take: consistentRead, unshare: write | resize },
  forceShare: { take: consistentRead, unshare: 0 },
  dataFileReadWrite: { take: consistentRead | write | resize, unshare: resize },
  dataFileReadOnly: { take: consistentRead, unshare: resize },
};

const dir = mkdtempSync(join(tmpdir(), 'q-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function image(name: string): string {
  const path = join(dir, name);
  writeFileSync(path, new Uint8Array(4096).fill(7));
  return path;
}

/** The OFD lock ranges held on `path` ("100-101", "201", ...), sorted, as /proc/locks shows them. */
function heldBytes(path: string): string[] {
  const inode = statSync(path).ino;
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .filter((line) => line.includes(`:${inode} `))
    .map((line) => {
      const fields = line.trim().split(/\s+/);
      expect(fields.slice(1, 4)).toEqual(['OFDLCK', 'ADVISORY', 'READ']);
      const [start, end] = [fields[fields.length - 2]!, fields[fields.length - 1]!];
      return start === end ? start : `${start}-${end}`;
    })
    .sort();
}

describe('QEMU image locks', () => {
  it("holds the bytes qemu-io holds, for each kind of open (as /proc/locks shows qemu's)", async () => {
    const cases: [keyof typeof IMAGE_LOCKS, string[]][] = [
      ['readWrite', ['100-101', '103', '201', '203']],
      ['readOnly', ['100', '201', '203']],
      ['forceShare', ['100']],
      ['dataFileReadWrite', ['100-101', '103', '203']],
      ['dataFileReadOnly', ['100', '203']],
    ];
    for (const [kind, bytes] of cases) {
      const path = image(`bytes-${kind}`);
      const file = await openNodeFile(path, { writable: kind.endsWith('ReadWrite'), lock: IMAGE_LOCKS[kind] });
      expect([kind, heldBytes(path)]).toEqual([kind, bytes]);
      await file.close();
      expect(heldBytes(path)).toEqual([]);
    }
  });

  it("refuses a second writer in QEMU's words, and a reader beside a writer", async () => {
    const path = image('writer');
    const writer = await openNodeFile(path, { writable: true, lock: IMAGE_LOCKS.readWrite });
    try {
      await expect(openNodeFile(path, { writable: true, lock: IMAGE_LOCKS.readWrite })).rejects.toMatchObject({
        code: 'E_LOCKED',
        message: `Failed to get "write" lock\nIs another process using the image [${path}]?`,
      });
      await expect(openNodeFile(path, { lock: IMAGE_LOCKS.readOnly })).rejects.toMatchObject({
        code: 'E_LOCKED',
        message: `Failed to get shared "write" lock\nIs another process using the image [${path}]?`,
      });
      // -U reads beside a writer.
      const shared = await openNodeFile(path, { lock: IMAGE_LOCKS.forceShare });
      await shared.close();
      // A failed open leaves none of its bytes behind.
      expect(heldBytes(path)).toEqual(['100-101', '103', '201', '203']);
    } finally {
      await writer.close();
    }
  });

  it('lets readers share, and refuses a writer beside a reader', async () => {
    const path = image('readers');
    const a = await openNodeFile(path, { lock: IMAGE_LOCKS.readOnly });
    const b = await openNodeFile(path, { lock: IMAGE_LOCKS.readOnly });
    await expect(openNodeFile(path, { writable: true, lock: IMAGE_LOCKS.readWrite })).rejects.toMatchObject({
      code: 'E_LOCKED',
      message: expect.stringMatching(/^Failed to get "write" lock\n/),
    });
    await a.close();
    await b.close();
    const writer = await openNodeFile(path, { writable: true, lock: IMAGE_LOCKS.readWrite });
    await writer.close();
  });

  it('takes locks after open too, replacing what the open held', async () => {
    const path = image('later');
    const file = await openNodeFile(path, { writable: true });
    expect(heldBytes(path)).toEqual([]);
    file.lock(IMAGE_LOCKS.readOnly);
    expect(heldBytes(path)).toEqual(['100', '201', '203']);
    file.lock(IMAGE_LOCKS.readWrite);
    expect(heldBytes(path)).toEqual(['100-101', '103', '201', '203']);
    await file.close();
  });

  it('does not truncate a file that another open holds (the lock comes before O_TRUNC)', async () => {
    const path = image('truncate');
    const holder = await openNodeFile(path, { lock: IMAGE_LOCKS.readOnly });
    await expect(openNodeFile(path, { create: true, truncate: true, lock: IMAGE_LOCKS.readWrite })).rejects.toMatchObject({ code: 'E_LOCKED' });
    expect(statSync(path).size).toBe(4096);
    await holder.close();
    const fresh = await openNodeFile(path, { create: true, truncate: true, lock: IMAGE_LOCKS.readWrite });
    expect(await fresh.size()).toBe(0);
    // The truncation opened and closed the file once more (node-file.ts discardOldBytes): the locks stay held.
    expect(heldBytes(path)).toEqual(['100-101', '103', '201', '203']);
    await expect(openNodeFile(path, { lock: IMAGE_LOCKS.readWrite })).rejects.toMatchObject({ code: 'E_LOCKED' });
    await fresh.close();
  });

  it('sees the locks of another process, and they go when it dies', async () => {
    const path = image('other-process');
    const script = `const m = await import(${JSON.stringify(new URL('../dist/node.js', import.meta.url).href)});
      const p = m.PERMISSION;
      await m.openNodeFile(${JSON.stringify(path)}, { writable: true, lock: { take: p.consistentRead | p.write | p.resize, unshare: p.write | p.resize } });
      process.stdout.write('held'); setTimeout(() => {}, 60000);`;
    const child = spawn('node', ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
      });
      await expect(openNodeFile(path, { lock: IMAGE_LOCKS.readOnly })).rejects.toMatchObject({ code: 'E_LOCKED' });
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const writer = await openNodeFile(path, { writable: true, lock: IMAGE_LOCKS.readWrite });
    await writer.close();
  }, 60_000);
});
