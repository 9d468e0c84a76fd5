export { readSnapshotTable } from './snapshot-table-reader.js';
export { findSnapshot, findSnapshotBy, requireSnapshot } from './snapshot-lookup.js';
export { readSnapshotL1, snapshotDiskSize } from './snapshot-l1.js';
