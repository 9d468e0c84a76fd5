export { checkImage, checkLayout, type CheckOptions, type CheckReport } from './check-image.js';
export { checkPass } from './check-pass.js';
export { emptyCounts, repairFlags, type CheckCounts, type CheckLog, type RepairFlags, type RepairMode } from './check-result.js';
export { formatCheckHuman, formatCheckJson, checkExitCode } from './format-report.js';
export { readImageLayout, type ImageLayout } from './image-layout.js';
export { walkReferences, type WalkResult } from './walk-references.js';
export { ExpectedRefcounts } from './expected-refcounts.js';
export { rebuildRefcounts, type RebuiltRefcounts } from './rebuild-refcounts.js';
export { OnDiskRefcounts, UnalignedRefcountBlock } from './on-disk-refcounts.js';
