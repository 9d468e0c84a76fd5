import type { BlockStore } from '@q/raw';
import { defaultStore } from '@q/vkd';

let store: BlockStore | undefined;

/**
 * The store the commands open files through outside `openDisk` (check's image, create's new files, convert's raw
 * target, info's backing names): local files, URLs and NBD exports, made once per process.
 */
export function cliStore(): BlockStore {
  store ??= defaultStore();
  return store;
}
