import type { BlockStore } from '@q/raw';
import type { NodeFileOptions } from '@q/raw/node';
import { defaultStore } from '@q/vkd';

let store: BlockStore | undefined;
let blockingStore: BlockStore | undefined;

/**
 * The store the commands open files through outside `openDisk` (check's image, create's new files, convert's raw
 * target, info's backing names): local files, URLs and NBD exports, made once per process.
 */
export function cliStore(): BlockStore {
  store ??= defaultStore();
  return store;
}

/**
 * The same routes, with local files whose every read and write is a blocking call on this thread: for a file the
 * command writes one request at a time while its reads run elsewhere (convert's raw target). A trip to libuv's pool
 * costs more than the write on a VM (the pool thread's wake-up); convert -O raw of the 1 GiB image into /dev/shm
 * took 0.47-0.48 s through the pool and 0.42-0.43 s blocking (qemu-img 0.41-0.44), the ext4-plain image into ext4
 * 0.42-0.44 and 0.36-0.39 s (qemu-img 0.54-0.63).
 */
export function cliBlockingStore(): BlockStore {
  blockingStore ??= defaultStore({ blocking: 'always' });
  return blockingStore;
}

/**
 * Bytes a copy writes into its target between two write-behind hints (`NodeFileOptions.writeBehind`). The copying
 * commands flush their target at the end, and on a disk the kernel left all of it to that flush: `qcow commit` of
 * 256 MiB into a 1 GiB chain on ext4 (2026-12-04, alternating, 9 each) took 523 ms without hints, 466 with one per
 * 4 MiB, 476 per 16 MiB (qemu-img 383): the fdatasync after the copy went from 150-200 ms to 100-120.
 */
const WRITE_BEHIND_BYTES = 4 << 20;

const targetStores = new Map<NodeFileOptions['blocking'], BlockStore>();

/**
 * The store a copying command opens its target through (and, for commit and rebase, the chain around it): local
 * files with write-behind, making calls as `blocking` says (`NodeFileOptions.blocking`), once per mode.
 */
export function cliTargetStore(blocking: NodeFileOptions['blocking'] = false): BlockStore {
  let store = targetStores.get(blocking);
  if (store === undefined) {
    store = defaultStore({ blocking, writeBehind: WRITE_BEHIND_BYTES });
    targetStores.set(blocking, store);
  }
  return store;
}
