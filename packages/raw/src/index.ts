export { DiskError, isDiskError, hex, type DiskErrorCode, type DiskErrorOptions } from './errors.js';
export { readExact, readPadded, type BlockFile, type BlockFileCapabilities, type FileRun } from './block-file.js';
export { checkRange, checkWritable, type BlockDevice, type BlockStatus, type WriteZeroesOptions } from './block-device.js';
export { MemoryBlockFile } from './memory-file.js';
export { splitAtHostHoles } from './host-holes.js';
export { RawDisk } from './raw-disk.js';
export { RecordingBlockFile, type RecordedOp, type RecordedWrite, type RecordedTruncate, type RecordedDeallocate, type RecordedFlush, type CrashPolicy, type CrashState } from './recording-file.js';
