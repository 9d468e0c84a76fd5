import type { BlockStore } from '@q/raw';
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
