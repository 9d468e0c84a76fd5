/** Node-only adapters: import from `@q/raw/node` so browser builds of `@q/raw` never see `node:fs`. */
export { NodeBlockFile, isMemoryBacked, openNodeFile, type NodeFileOptions } from './node-file.js';
export { PERMISSION, lockImage, unlockImage, type LockPermissions } from './image-lock.js';
export { nodeFileStore, type NodeFileStoreOptions } from './node-file-store.js';
