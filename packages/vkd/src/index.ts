export { parseDiskSpec, type DiskSpec } from './disk-spec.js';
export { openDisk, type OpenDiskOptions, type DiskFormat } from './open-disk.js';
export { CothreadDisk, type CothreadOptions } from './cothread-disk.js';
export { BACKING_USER, LOCK_USERS, dataFileLocks, imageFileLocks, toolUser } from './lock-model.js';
export { UNTRUSTED_MAX_BACKING_DEPTH, type UntrustedPolicy } from './untrusted.js';
export { defaultStore } from './default-store.js';
