import { formatSize } from './numbers.js';
import type { ImageInfoJson } from './image-info.js';

/** qemu-img info's human-readable form of one layer. */
export function formatInfoHuman(info: ImageInfoJson): string {
  const lines: string[] = [];
  const size = info['virtual-size'] as number;
  lines.push(`image: ${info['filename']}`);
  lines.push(`file format: ${info['format']}`);
  lines.push(`virtual size: ${formatSize(size)} (${size} bytes)`);
  if (info['actual-size'] !== undefined) lines.push(`disk size: ${formatSize(info['actual-size'] as number)}`);
  if (info['cluster-size'] !== undefined) lines.push(`cluster_size: ${info['cluster-size']}`);
  if (info['backing-filename'] !== undefined) {
    const full = info['full-backing-filename'];
    const actual = full !== undefined && full !== info['backing-filename'] ? ` (actual path: ${full})` : '';
    lines.push(`backing file: ${info['backing-filename']}${actual}`);
  }
  if (info['backing-filename-format'] !== undefined) lines.push(`backing file format: ${info['backing-filename-format']}`);
  if (info['dirty-flag'] === true) lines.push('cleanly shut down: no');
  const snapshots = info['snapshots'] as Array<Record<string, unknown>> | undefined;
  if (snapshots !== undefined && snapshots.length > 0) {
    lines.push('Snapshot list:');
    lines.push(snapshotHeader());
    for (const snapshot of snapshots) lines.push(snapshotRow(snapshot));
  }
  const specific = info['format-specific'] as { data: Record<string, unknown> } | undefined;
  if (specific !== undefined) {
    lines.push('Format specific information:');
    dumpObject(specific.data, 1, lines);
  }
  return lines.join('\n') + '\n';
}

/** The snapshot table header qemu-img prints (snapshot -l and info). */
export function snapshotHeader(): string {
  return 'ID'.padEnd(10) + 'TAG'.padEnd(17) + 'VM SIZE'.padStart(8) + 'DATE'.padStart(20) + 'VM CLOCK'.padStart(13) + 'ICOUNT'.padStart(11);
}

export function snapshotRow(snapshot: Record<string, unknown>): string {
  const date = new Date((snapshot['date-sec'] as number) * 1000);
  const pad2 = (n: number): string => String(n).padStart(2, '0');
  const dateText = `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
  const clockSeconds = snapshot['vm-clock-sec'] as number;
  const clockMs = Math.floor((snapshot['vm-clock-nsec'] as number) / 1e6);
  const clock = `${pad2(Math.floor(clockSeconds / 3600))}:${pad2(Math.floor(clockSeconds / 60) % 60)}:${pad2(clockSeconds % 60)}.${String(clockMs).padStart(3, '0')}`;
  const icount = snapshot['icount'] === undefined ? '' : String(snapshot['icount']);
  return (
    String(snapshot['id']).padEnd(9) +
    ' ' +
    String(snapshot['name']).padEnd(16) +
    ' ' +
    formatSize(snapshot['vm-state-size'] as number).padStart(8) +
    dateText.padStart(20) +
    clock.padStart(13) +
    icount.padStart(11)
  );
}

/** QEMU's dump of a QAPI object: "key: value" lines, nested objects and lists indented by four spaces. */
function dumpObject(object: Record<string, unknown>, depth: number, lines: string[]): void {
  for (const [key, value] of Object.entries(object)) {
    const label = key.replaceAll('-', ' ');
    dumpValue(label, value, depth, lines);
  }
}

function dumpValue(label: string, value: unknown, depth: number, lines: string[]): void {
  const indent = '    '.repeat(depth);
  if (Array.isArray(value)) {
    lines.push(`${indent}${label}:`);
    value.forEach((item, index) => dumpValue(`[${index}]`, item, depth + 1, lines));
  } else if (value !== null && typeof value === 'object') {
    lines.push(`${indent}${label}:`);
    dumpObject(value as Record<string, unknown>, depth + 1, lines);
  } else {
    lines.push(`${indent}${label}: ${String(value)}`);
  }
}
