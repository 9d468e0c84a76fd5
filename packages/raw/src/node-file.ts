import {
  close,
  closeSync,
  constants,
  fdatasync,
  fstat,
  fstatSync,
  ftruncate,
  ftruncateSync,
  open,
  openSync,
  read,
  readSync,
  statfsSync,
  write,
  writeSync,
  type Stats,
} from 'node:fs';
import { fileRunAt, posixSupport, punchHole, readNowait, reserveSpace } from '@q/posix';
import type { BlockFile, BlockFileCapabilities, FileRun } from './block-file.js';
import { DiskError } from './errors.js';
import { WriteStallGuard } from './write-stall-guard.js';
import { WriteBehind } from './write-behind.js';
import { lockImage, unlockImage, type LockPermissions } from './image-lock.js';

export interface NodeFileOptions {
  /** Open for writing (O_RDWR); default read-only. */
  writable?: boolean;
  /** Create the file when missing (implies writable). */
  create?: boolean;
  /** Truncate an existing file to zero length (with create: a fresh file). */
  truncate?: boolean;
  /**
   * Read, write and truncate requests under 128 KiB with blocking system calls on the calling thread instead of
   * libuv's thread pool. A small request in the page cache then costs a copy, not a round trip between threads:
   * about three times faster at 4 KiB. Larger requests (and flushes) stay on the pool, where their copies run in
   * parallel with this thread's. `true` only for a thread that may block: a CLI, or a worker running the engine as
   * the cothread. `'memory'` for an event loop that serves clients: blocking calls (under 2 MiB) only when the file
   * lives in memory (tmpfs, ramfs), where a call is a copy and never waits for a device; the thread pool otherwise.
   * `'always'`: every read, write and truncate blocks, whatever its size (a cothread worker, which has nothing to
   * overlap a copy with and pays a wake-up for every trip to the pool). `'nowait'`, for an event loop that serves
   * clients from files anywhere: as `'memory'` for files in memory; on other files, requests block only where they
   * do not wait for a device, up to 2 MiB: a read takes what the page cache holds (preadv2 with RWF_NOWAIT) and
   * sends only the rest to the pool, a write blocks for its copy into the page cache unless a recent one stalled
   * (WriteStallGuard). Where preadv2 cannot be called (not Linux), the pool. `'writes'`: as `true`, and every
   * write and truncate blocks too, whatever its size: a copy's target, written one request at a time while its
   * sources are read on the pool (on a disk each 256 KiB piece, WRITE_PIECE, was a trip to the pool).
   */
  blocking?: boolean | 'memory' | 'always' | 'nowait' | 'writes';
  /**
   * Take QEMU's image locks (see `lock()`) at open, before an existing file is truncated, so QEMU and other `qcow` processes
   * see this open and refuse what would conflict with it, and the other way round. Fails with E_LOCKED in QEMU's
   * words when another process holds a conflicting lock; with E_UNSUPPORTED where locks cannot be taken (not
   * Linux). Default: no locks (scratch files, tests).
   */
  lock?: LockPermissions;
  /**
   * For a file written in bulk and then flushed (a copy's target): after every this many bytes written, ask the
   * kernel to start writing them to the device (WriteBehind), so the final flush finds most of them written. Only
   * for writable files on a device (not tmpfs or ramfs) where @q/posix can make the call. Default: off.
   */
  writeBehind?: number;
}

/** statfs(2) f_type of file systems whose files live in memory: a system call on them never waits for a device. */
const MEMORY_FILE_SYSTEMS = new Set([0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */]);

/** Whether `path` lives in memory (see MEMORY_FILE_SYSTEMS); false when that cannot be told. */
export function isMemoryBacked(path: string): boolean {
  try {
    return MEMORY_FILE_SYSTEMS.has(statfsSync(path).type);
  } catch {
    return false;
  }
}

/**
 * Truncates an open file to zero length, then opens and closes it once more. Why the second open: ext4 marks a file
 * truncated to zero (auto_da_alloc, its guard for programs that rewrite a file in place) and, when that descriptor
 * closes, starts writeback of everything written through it and waits for the blocks to be allocated: 0.4 s at the
 * close of a 1 GiB conversion, measured. Closing another descriptor clears the mark while nothing is written yet
 * (qemu-img gets the same by creating the image through one descriptor and writing it through another). Never
 * called for an empty file, whose truncation would only set the mark. The image locks are OFD locks, owned by
 * `fd`'s open file description: closing the other descriptor leaves them held.
 */
function discardOldBytes(fd: number, path: string): void {
  syncCall(() => ftruncateSync(fd, 0), path, 'truncate');
  try {
    closeSync(openSync(path, constants.O_RDONLY));
  } catch {
    // Not readable by us (mode 0200), or renamed meanwhile: the writes stay right, only the close is slower.
  }
}

/**
 * A BlockFile over a Node file descriptor. Uses the callback fs API (pread/pwrite on libuv's pool), which costs
 * less per call than FileHandle and lets several reads run at once.
 */
export class NodeBlockFile implements BlockFile {
  readonly name: string;
  readonly capabilities: BlockFileCapabilities;
  private fd: number | undefined;
  /** Requests below this many bytes use blocking calls (0: none). */
  private readonly blockingBelow: number;
  /** Writes (and truncates) below this many bytes use blocking calls: blockingBelow, or Infinity for 'writes'. */
  private readonly writeBlockingBelow: number;
  /** The most one write(2) carries (WRITE_PIECE on a disk-backed file system, unbounded in memory). */
  private readonly writePiece: number;
  /**
   * `NodeFileOptions.blocking` 'nowait' on a file that may wait for a device: requests under NOWAIT_BELOW run on
   * this thread where they do not wait: reads take what the page cache holds first (readNowait), writes block
   * while the guard allows it.
   */
  private readonly nowait: boolean;
  private readonly writeGuard = new WriteStallGuard();
  /**
   * The last run SEEK_DATA/SEEK_HOLE found to be data, [start, end). On tmpfs SEEK_HOLE walks every page up to the
   * next hole, so in a fully written file it costs a walk to the end of the file: 1-7 ms per call for 0.25-1 GiB,
   * for every 64 KiB NBD read. Data stays data until this file punches or truncates (a write only turns holes into
   * data; another process punching a hole makes us report data that reads as zeros: slower, never wrong), so the
   * run is kept until then. Holes are never kept: a write may fill one at any time.
   */
  private dataRun: { start: number; end: number } | undefined;
  /** `lock` has taken this open's bytes at least once (so a later call must drop them, even to take none). */
  private locked = false;
  private readonly writeBehind: WriteBehind | undefined;

  private constructor(name: string, fd: number, writable: boolean, blocking: { below: number; writesBelow: number }, nowait: boolean, writePiece: number, writeBehind: WriteBehind | undefined) {
    this.name = name;
    this.writeBehind = writeBehind;
    this.writePiece = writePiece;
    this.fd = fd;
    // Getters, not values: asking @q/posix loads koffi and binds libc (milliseconds of a short command's start),
    // which an open that never locks, punches or seeks a hole (a read-only `qcow info`) should not pay for.
    this.capabilities = {
      writable,
      sparse: true,
      get deallocate() {
        return writable && posixSupport().available;
      },
      get lock() {
        return posixSupport().available;
      },
    };
    this.blockingBelow = blocking.below;
    this.writeBlockingBelow = blocking.writesBelow;
    this.nowait = nowait;
  }

  static async open(path: string, options: NodeFileOptions = {}): Promise<NodeBlockFile> {
    const writable = options.writable === true || options.create === true;
    let flags = writable ? constants.O_RDWR : constants.O_RDONLY;
    if (options.create) flags |= constants.O_CREAT;
    // No O_TRUNC: the file is truncated after the lock is held (a file another process uses must not lose its bytes
    // before we learn that it is in use, as qemu-img create does) and only when it has bytes (discardOldBytes).
    // A thread that may block (a CLI, a cothread) opens with blocking calls too: a trip to libuv's pool costs more
    // than the call, and a short command that makes no other trip never starts the pool's threads.
    const blockingOpen = blocksCaller(options.blocking);
    const fd = blockingOpen
      ? syncCall(() => openSync(path, flags, 0o644), path, 'open')
      : await new Promise<number>((resolve, reject) => {
          open(path, flags, 0o644, (error, fd) => (error ? reject(fsError(error, path, 'open')) : resolve(fd)));
        });
    try {
      const stat = blockingOpen
        ? syncCall(() => fstatSync(fd), path, 'stat')
        : await new Promise<Stats>((resolve, reject) =>
            fstat(fd, (error, stat) => (error ? reject(fsError(error, path, 'stat')) : resolve(stat))),
          );
      if (stat.isDirectory()) throw new DiskError('E_NOT_FOUND', 'is a directory', { file: path });
      if (options.lock !== undefined) lockImage(fd, options.lock, path);
      if (options.truncate === true && stat.size > 0) discardOldBytes(fd, path);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    const servesLoop = options.blocking === 'memory' || options.blocking === 'nowait';
    // statfs only where the answer is used: the serving modes, and the write size of a writable file.
    const memoryBacked = servesLoop || writable ? isMemoryBacked(path) : false;
    const inMemory = servesLoop && memoryBacked;
    const blocking = inMemory || options.blocking === true || options.blocking === 'writes';
    // An event loop serving a file in memory blocks for anything but huge requests: each is a copy (NOWAIT_BELOW).
    const blockingBelow = options.blocking === 'always' ? Infinity : inMemory ? NOWAIT_BELOW : blocking ? BLOCKING_BELOW : 0;
    const nowait = options.blocking === 'nowait' && !inMemory && posixSupport().available;
    const writeBehind = writable && !memoryBacked && (options.writeBehind ?? 0) > 0 && posixSupport().available ? new WriteBehind(fd, options.writeBehind!) : undefined;
    const below = { below: blockingBelow, writesBelow: options.blocking === 'writes' ? Infinity : blockingBelow };
    return new NodeBlockFile(path, fd, writable, below, nowait, memoryBacked || !writable ? Infinity : WRITE_PIECE, writeBehind);
  }

  read(dst: Uint8Array, offset: number): Promise<number> {
    const fd = this.descriptor();
    if (dst.length < this.blockingBelow) return this.sync('read', offset, () => readSyncFully(fd, dst, offset));
    let cached = 0;
    if (this.nowait && dst.length < NOWAIT_BELOW && dst.length > 0) {
      try {
        cached = readNowait(fd, dst, offset);
      } catch (error) {
        return Promise.reject(fsError(error as NodeJS.ErrnoException, this.name, 'read', offset));
      }
      if (cached === dst.length) return Promise.resolve(cached);
    }
    return new Promise((resolve, reject) => {
      let done = cached;
      const step = (): void => {
        read(fd, dst, done, dst.length - done, offset + done, (error, count) => {
          if (error) return reject(fsError(error, this.name, 'read', offset + done));
          done += count;
          if (count === 0 || done === dst.length) resolve(done);
          else step();
        });
      };
      if (dst.length === 0) resolve(0);
      else step();
    });
  }

  write(src: Uint8Array, offset: number): Promise<void> {
    const fd = this.descriptor();
    if (!this.capabilities.writable) return Promise.reject(new DiskError('E_READ_ONLY', 'file is read-only', { file: this.name }));
    if (src.length < this.writeBlockingBelow) return this.sync('write', offset, () => this.wrote(offset, writeSyncFully(fd, src, offset, this.writePiece)));
    if (this.nowait && src.length < NOWAIT_BELOW && this.writeGuard.inline()) {
      return this.sync('write', offset, () => this.wrote(offset, this.writeGuard.timed(() => writeSyncFully(fd, src, offset, this.writePiece))));
    }
    return new Promise((resolve, reject) => {
      let done = 0;
      const step = (): void => {
        write(fd, src, done, Math.min(this.writePiece, src.length - done), offset + done, (error, count) => {
          if (error) return reject(fsError(error, this.name, 'write', offset + done));
          done += count;
          if (done < src.length) return step();
          this.wrote(offset, done);
          resolve();
        });
      };
      if (src.length === 0) resolve();
      else step();
    });
  }

  flush(): Promise<void> {
    const fd = this.descriptor();
    // Nothing written through a read-only descriptor to make durable (`qcow check` without -r flushes at its end).
    if (!this.capabilities.writable) return Promise.resolve();
    return new Promise((resolve, reject) =>
      fdatasync(fd, (error) => (error ? reject(fsError(error, this.name, 'flush')) : resolve())),
    );
  }

  size(): Promise<number> {
    return this.stat().then((stat) => stat.size);
  }

  truncate(size: number): Promise<void> {
    const fd = this.descriptor();
    this.dataRun = undefined;
    if (!this.capabilities.writable) return Promise.reject(new DiskError('E_READ_ONLY', 'file is read-only', { file: this.name }));
    if (this.writeBlockingBelow > 0) return this.sync('truncate', undefined, () => ftruncateSync(fd, size));
    return new Promise((resolve, reject) =>
      ftruncate(fd, size, (error) => (error ? reject(fsError(error, this.name, 'truncate')) : resolve())),
    );
  }

  /**
   * Takes QEMU's image locks for `permissions` on this open (dropping any it held), for as long as it stays open:
   * QEMU and other `qcow` processes then refuse what conflicts with it, and a conflict they hold fails here with
   * E_LOCKED in QEMU's words. Where locks cannot be taken (not Linux), E_UNSUPPORTED: never silently unlocked.
   */
  lock(permissions: LockPermissions): void {
    const fd = this.descriptor();
    // Nothing held and nothing asked (qemu-img info -U, info of a raw file): no byte to take or check, so no reason
    // to load the FFI that would take them.
    if (!this.locked && permissions.take === 0 && permissions.unshare === 0) return;
    // A first lock has nothing to drop (8 fcntl calls saved per image opened).
    if (this.locked) unlockImage(fd);
    lockImage(fd, permissions, this.name);
    this.locked = true;
  }

  /** Punches a hole (fallocate PUNCH_HOLE | KEEP_SIZE): the range reads as zeros and its blocks are freed. */
  deallocate(offset: number, length: number): Promise<boolean> {
    const fd = this.descriptor();
    this.dataRun = undefined;
    if (!this.capabilities.deallocate) return Promise.resolve(false);
    return this.sync('deallocate', offset, () => punchHole(fd, offset, length));
  }

  /** fallocate(2) with mode 0: the range's blocks reserved, unwritten (false where the file system cannot). */
  reserve(offset: number, length: number): Promise<boolean> {
    const fd = this.descriptor();
    if (!this.capabilities.writable || !posixSupport().available) return Promise.resolve(false);
    return this.sync('reserve', offset, () => reserveSpace(fd, offset, length));
  }

  /** st_blocks in bytes: what the file occupies, as `du` counts it. */
  allocatedSize(): Promise<number> {
    return this.stat().then((stat) => stat.blocks * 512);
  }

  /** fstat(2), blocking where this file's small requests block (a copy from the inode, never a wait). */
  private stat(): Promise<Stats> {
    const fd = this.descriptor();
    if (this.blockingBelow > 0) return this.sync('stat', undefined, () => fstatSync(fd));
    return new Promise((resolve, reject) => fstat(fd, (error, stat) => (error ? reject(fsError(error, this.name, 'stat')) : resolve(stat))));
  }

  /** SEEK_DATA / SEEK_HOLE: whether the bytes at `offset` are stored or a hole, and how far that goes. */
  runAt(offset: number, length: number): Promise<FileRun> {
    const fd = this.descriptor();
    // Where lseek cannot tell, everything is data: true, only less precise.
    if (!posixSupport().available) return Promise.resolve({ data: true, length });
    const known = this.dataRun;
    if (known !== undefined && offset >= known.start && offset < known.end) {
      return Promise.resolve({ data: true, length: Math.min(length, known.end - offset) });
    }
    return this.sync('seek', offset, () => {
      const run = fileRunAt(fd, offset, length);
      if (run.data) this.dataRun = { start: offset, end: offset + run.length };
      return run;
    });
  }

  async close(): Promise<void> {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined) return;
    await this.writeBehind?.settled();
    // A close that drops the last reference of a file written through it may wait for the file system: blocking
    // only for a read-only file on a blocking thread.
    if (this.blockingBelow > 0 && !this.capabilities.writable) return this.sync('close', undefined, () => closeSync(fd));
    return new Promise((resolve, reject) =>
      close(fd, (error) => (error ? reject(fsError(error, this.name, 'close')) : resolve())),
    );
  }

  /**
   * Counts a finished write for write-behind. A method, not `this.writeBehind?.written(offset, write())` at the
   * call sites: optional chaining would skip evaluating the write itself when there is no write-behind.
   */
  private wrote(offset: number, length: number): void {
    this.writeBehind?.written(offset, length);
  }

  /** Runs a blocking call; its failure becomes a rejected promise, as on the asynchronous path. */
  private sync<T>(operation: string, offset: number | undefined, call: () => T): Promise<T> {
    try {
      return Promise.resolve(call());
    } catch (error) {
      return Promise.reject(fsError(error as NodeJS.ErrnoException, this.name, operation, offset));
    }
  }

  private descriptor(): number {
    if (this.fd === undefined) throw new DiskError('E_IO', 'file is closed', { file: this.name });
    return this.fd;
  }
}

/**
 * Whether `blocking` is a caller's that may block (a CLI, a cothread: `true`, `'always'`): it then also opens, stats
 * and asks about names with blocking calls, which cost less than a trip to the pool and never start its threads.
 */
export function blocksCaller(blocking: NodeFileOptions['blocking']): boolean {
  return blocking === true || blocking === 'always' || blocking === 'writes';
}

/** Runs a blocking system call, its failure in this module's words (fsError). */
function syncCall<T>(call: () => T, path: string, operation: string): T {
  try {
    return call();
  } catch (error) {
    throw fsError(error as NodeJS.ErrnoException, path, operation);
  }
}

/**
 * Requests at least this large go to the thread pool even on a blocking file (see `NodeFileOptions.blocking`).
 * Above 64 KiB so that the default cluster (a header cluster, an L2 table) is one blocking read.
 */
const BLOCKING_BELOW = 128 * 1024;

/**
 * Requests below this size run on the calling thread in 'nowait' mode where they do not wait for a device (a read
 * from the page cache, a write into it). Larger than BLOCKING_BELOW: such a request is a copy, and a copy of even
 * 1 MiB (~130 us read, ~250 us written) costs less than a trip to the pool on a VM, where waking a sleeping pool
 * thread costs the event loop ~90 us (cpu profile: the read and write bindings). Measured with `qcow serve`
 * on ext4 (fio nbd, IOPS, then qemu-nbd's): 64 KiB reads QD8 15.0k -> 17.9k (15.6k), 1 MiB reads QD1 1.22k ->
 * 1.40k (1.22k), 1 MiB reads QD4 1.95k -> 1.80k (1.73k: there the pool's parallel copies won); 1 MiB writes QD1
 * 1.19k -> 1.33k (1.15k), QD4 1.61k -> 1.66k (1.72k), 256 KiB writes QD8 5.0k -> 5.5k (5.4k). Capped so that a
 * huge request does not hold the event loop for long, and below what WriteStallGuard would call a stall. The same
 * bound for files in memory on an event loop ('memory', 'nowait'), on /dev/shm: 64 KiB reads QD8 15.5-16.2k ->
 * 16.9-17.7k (qemu-nbd 16.5-17.4k), 1 MiB reads through a backing file QD1 1.13-1.17k -> 1.23-1.31k (1.17-1.23k).
 */
const NOWAIT_BELOW = 2 * 1024 * 1024;

/**
 * The most one write(2) call carries. The kernel sizes the page-cache folios a write allocates by the write: 1 MiB
 * and 2 MiB writes at aligned offsets get 1-2 MiB folios, and on a VM whose host takes back free guest memory
 * (virtio-balloon free page reporting, as here: it reports free blocks of 2 MiB and more) exactly those blocks are
 * the ones the host has to fault in again. 1 GiB written into a new file on ext4 2 s after the last big file was
 * deleted, from C (2026-12-04, kernel 6.18): 2 MiB writes 2.4-3.0 s, 1 MiB 2.4-2.7 s, 512 KiB 0.41-0.53 s, 256 KiB
 * 0.21-0.27 s; without the wait 2 MiB and 256 KiB writes both take 0.25 s. On tmpfs the size made no difference in C
 * and more calls cost a little: files in memory write whole.
 */
const WRITE_PIECE = 256 * 1024;

function readSyncFully(fd: number, dst: Uint8Array, offset: number): number {
  let done = 0;
  while (done < dst.length) {
    const count = readSync(fd, dst, done, dst.length - done, offset + done);
    if (count === 0) break;
    done += count;
  }
  return done;
}

/** Writes all of `src` at `offset`, at most `piece` bytes a call; returns the length written (all of it). */
function writeSyncFully(fd: number, src: Uint8Array, offset: number, piece: number): number {
  for (let done = 0; done < src.length; ) done += writeSync(fd, src, done, Math.min(piece, src.length - done), offset + done);
  return src.length;
}

/** Opens a Node file as a BlockFile (see NodeFileOptions). */
export function openNodeFile(path: string, options?: NodeFileOptions): Promise<NodeBlockFile> {
  return NodeBlockFile.open(path, options);
}

function fsError(error: NodeJS.ErrnoException, file: string, operation: string, offset?: number): DiskError {
  const reason = describeErrno(error);
  const code = error.code === 'ENOENT' || error.code === 'EACCES' || error.code === 'EISDIR' || error.code === 'ENOTDIR' ? 'E_NOT_FOUND' : 'E_IO';
  const at = offset === undefined ? '' : ` at offset ${offset}`;
  return new DiskError(code, `${operation} failed${at}: ${reason}`, { file, offset, cause: error });
}

function describeErrno(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT': return 'No such file or directory';
    case 'EACCES': return 'Permission denied';
    case 'EISDIR': return 'Is a directory';
    case 'ENOSPC': return 'No space left on device';
    case 'EROFS': return 'Read-only file system';
    default: return error.code ?? error.message;
  }
}
