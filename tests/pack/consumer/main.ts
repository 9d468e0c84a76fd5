// A stranger's program: it installed @q/raw, @q/format and @q/qcow2 from their tarballs and brings its own I/O
// backend (bytes in memory, read with fs.readFileSync), as the README says a user may. It opens every image that
// has an answer file in the directory given on the command line and checks the guest bytes against the answer.
// Copied into a project outside the workspace by pack-install.test.ts; nothing here may import workspace code.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { DiskError, type BlockDevice, type BlockFile, type BlockStore, type StoreOpenOptions } from '@q/raw';
import { decodeHeader, geometryOf } from '@q/format';
import { openImage } from '@q/qcow2';

interface Answer {
  image: string;
  guestSha256: string;
  snapshotSha256: Record<string, string>;
  info: { 'virtual-size': number; 'cluster-size': number };
}

/** A read-only BlockFile over bytes already in memory. */
class BytesFile implements BlockFile {
  readonly capabilities = { writable: false, sparse: false };
  constructor(readonly name: string, private readonly bytes: Uint8Array) {}

  async read(dst: Uint8Array, offset: number): Promise<number> {
    const part = this.bytes.subarray(Math.min(offset, this.bytes.length), Math.min(offset + dst.length, this.bytes.length));
    dst.set(part);
    return part.length;
  }
  async write(): Promise<void> {
    throw new DiskError('E_READ_ONLY', 'this store is read-only', { file: this.name });
  }
  async truncate(): Promise<void> {
    throw new DiskError('E_READ_ONLY', 'this store is read-only', { file: this.name });
  }
  async flush(): Promise<void> {}
  async size(): Promise<number> {
    return this.bytes.length;
  }
  async close(): Promise<void> {}
}

/** Every file of one directory, by bare name, read into memory on first open. */
class DirectoryBytesStore implements BlockStore {
  readonly capabilities = { write: false, lock: false, deallocate: false };
  constructor(private readonly dir: string) {}

  async open(name: string, options: StoreOpenOptions = {}): Promise<BlockFile> {
    if (options.writable === true || options.create === true || options.lock !== undefined) {
      throw new DiskError('E_READ_ONLY', 'this store only reads', { file: name });
    }
    if (!(await this.exists(name))) throw new DiskError('E_NOT_FOUND', 'No such file', { file: name });
    const data = readFileSync(join(this.dir, name));
    return new BytesFile(name, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  resolve(base: string, name: string): string {
    return posix.isAbsolute(name) ? name : posix.join(posix.dirname(base), name);
  }
  async identify(name: string): Promise<string> {
    return posix.normalize(name);
  }
  async exists(name: string): Promise<boolean> {
    return readdirSync(this.dir).includes(name);
  }
}

async function guestSha256(device: BlockDevice): Promise<string> {
  const hash = createHash('sha256');
  const chunk = new Uint8Array(1 << 20);
  for (let offset = 0; offset < device.size; offset += chunk.length) {
    const part = chunk.subarray(0, Math.min(chunk.length, device.size - offset));
    await device.read(part, offset);
    hash.update(part);
  }
  return hash.digest('hex');
}

async function check(store: DirectoryBytesStore, answer: Answer, snapshot?: string): Promise<string[]> {
  const label = snapshot === undefined ? answer.image : `${answer.image}@${snapshot}`;
  const expected = snapshot === undefined ? answer.guestSha256 : answer.snapshotSha256[snapshot];
  const device = await openImage(answer.image, { store, snapshot });
  try {
    const actual = await guestSha256(device);
    return actual === expected ? [] : [`${label}: guest sha256 ${actual}, expected ${expected}`];
  } finally {
    await device.close();
  }
}

async function main(dir: string): Promise<number> {
  const store = new DirectoryBytesStore(dir);
  const answers = readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as Answer);
  const problems: string[] = [];
  for (const answer of answers) {
    // @q/format alone, on the first cluster: the header as the engine will see it.
    const first = new Uint8Array(readFileSync(join(dir, answer.image)).subarray(0, 4096));
    const clusterSize = geometryOf(decodeHeader(first)).clusterSize;
    if (clusterSize !== answer.info['cluster-size']) problems.push(`${answer.image}: cluster size ${clusterSize}`);
    problems.push(...(await check(store, answer)));
    for (const snapshot of Object.keys(answer.snapshotSha256)) problems.push(...(await check(store, answer, snapshot)));
  }
  for (const problem of problems) process.stderr.write(`${problem}\n`);
  process.stdout.write(`checked ${answers.length} images: ${problems.length} problems\n`);
  return problems.length === 0 && answers.length > 0 ? 0 : 1;
}

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: node main.js FIXTURE_DIR');
process.exitCode = await main(dir);
