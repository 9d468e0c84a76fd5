import type { CheckReport } from './check-image.js';
import { fixed2 } from './printf.js';

/**
 * qemu-img check's human output (stdout), line for line: the repair summary when something was fixed, the
 * verdict, the allocation statistics and the image end offset.
 */
export function formatCheckHuman(report: CheckReport): string {
  let out = '';
  if (report.repaired !== undefined) {
    out +=
      'The following inconsistencies were found and repaired:\n\n' +
      `    ${report.repaired.leaks} leaked clusters\n` +
      `    ${report.repaired.corruptions} corruptions\n\n` +
      'Double checking the fixed image now...\n';
  }
  if (report.corruptions === 0 && report.leaks === 0 && report.checkErrors === 0) {
    out += 'No errors were found on the image.\n';
  } else {
    if (report.corruptions > 0) {
      out += `\n${report.corruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n`;
    }
    if (report.leaks > 0) {
      out += `\n${report.leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n`;
    }
    if (report.checkErrors > 0) out += `\n${report.checkErrors} internal errors have occurred during the check.\n`;
  }
  if (report.totalClusters !== 0 && report.allocatedClusters !== 0) {
    const allocated = (report.allocatedClusters * 100) / report.totalClusters;
    const fragmented = (report.fragmentedClusters * 100) / report.allocatedClusters;
    const compressed = (report.compressedClusters * 100) / report.allocatedClusters;
    out += `${report.allocatedClusters}/${report.totalClusters} = ${fixed2(allocated)}% allocated, ${fixed2(fragmented)}% fragmented, ${fixed2(compressed)}% compressed clusters\n`;
  }
  if (report.imageEndOffset !== 0) out += `Image end offset: ${report.imageEndOffset}\n`;
  return out;
}

/**
 * qemu-img check's JSON: counts that are zero are left out (except check-errors), and keys come in the order
 * QEMU's dictionary happens to print them (it is hash order, stable for this set of keys).
 */
export function formatCheckJson(report: CheckReport): string {
  const fields: Array<[string, number | string, boolean]> = [
    ['image-end-offset', report.imageEndOffset, report.imageEndOffset !== 0],
    ['compressed-clusters', report.compressedClusters, report.compressedClusters !== 0],
    ['total-clusters', report.totalClusters, report.totalClusters !== 0],
    ['corruptions', report.corruptions, report.corruptions !== 0],
    ['corruptions-fixed', report.corruptionsFixed, report.corruptionsFixed !== 0],
    ['check-errors', report.checkErrors, true],
    ['leaks', report.leaks, report.leaks !== 0],
    ['leaks-fixed', report.leaksFixed, report.leaksFixed !== 0],
    ['allocated-clusters', report.allocatedClusters, report.allocatedClusters !== 0],
    ['filename', report.filename, true],
    ['format', report.format, true],
    ['fragmented-clusters', report.fragmentedClusters, report.fragmentedClusters !== 0],
  ];
  const lines = fields.filter(([, , present]) => present).map(([key, value]) => `    ${JSON.stringify(key)}: ${JSON.stringify(value)}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}

/** qemu-img check's exit code: 1 when the check could not finish, 2 corruptions, 3 leaks only, 0 clean. */
export function checkExitCode(report: CheckReport): number {
  if (report.checkErrors > 0) return 1;
  if (report.corruptions > 0) return 2;
  if (report.leaks > 0) return 3;
  return 0;
}
