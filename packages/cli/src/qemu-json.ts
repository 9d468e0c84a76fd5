/**
 * JSON as qemu-img prints it: four-space indents, and an empty array opened and closed on lines of their own
 * (`"flags": [` then `]` under it), where JSON.stringify writes `[]` (observed in qemu-img 7.2's `info` of a
 * bitmap without flags).
 */
export function qemuJson(value: unknown): string {
  return JSON.stringify(value, null, 4).replace(/^( *)(.*)\[\](,?)$/gm, '$1$2[\n$1]$3');
}
