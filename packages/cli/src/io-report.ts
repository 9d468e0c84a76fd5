/** qemu-io's cvtstr: a byte count with a binary unit, ".000" trimmed ("64 KiB", "1.500 KiB", "32 bytes"). */
export function ioSize(value: number): string {
  const units: Array<[number, string]> = [
    [2 ** 60, 'EiB'],
    [2 ** 50, 'PiB'],
    [2 ** 40, 'TiB'],
    [2 ** 30, 'GiB'],
    [2 ** 20, 'MiB'],
    [2 ** 10, 'KiB'],
  ];
  for (const [scale, unit] of units) {
    if (value >= scale) return `${trim(fixed3(value / scale))} ${unit}`;
  }
  return `${trim(fixed3(value))} bytes`;
}

/**
 * C's "%.3f": like toFixed(3), except that a value exactly halfway between two outputs goes to the even one
 * (printf rounds 2.0625 to "2.062"; toFixed gives "2.063").
 */
export function fixed3(value: number): string {
  // An exact tie at the third decimal is m/16 with m odd (x.xxx5 must be a binary fraction); anything else that
  // looks like a tie is a double just above or below it, which toFixed already rounds the way printf does.
  const sixteenths = value * 16;
  if (Number.isInteger(sixteenths) && sixteenths % 2 === 1) {
    const floor = Math.floor(value * 1000);
    return ((floor % 2 === 0 ? floor : floor + 1) / 1000).toFixed(3);
  }
  return value.toFixed(3);
}

function trim(text: string): string {
  return text.endsWith('.000') ? text.slice(0, -4) : text;
}

/** qemu-io's summary line after a command: "64 KiB, 1 ops; 00.00 sec (523.113 MiB/sec and 8369.8118 ops/sec)". */
export function ioReport(bytes: number, ops: number, seconds: number): string {
  const safe = Math.max(seconds, 1e-9);
  const whole = Math.floor(seconds);
  const hundredths = Math.floor((seconds - whole) * 100);
  const time =
    whole >= 60
      ? `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}.${String(hundredths).padStart(2, '0')}`
      : `${String(whole).padStart(2, '0')}.${String(hundredths).padStart(2, '0')} sec`;
  return `${ioSize(bytes)}, ${ops} ops; ${time} (${ioSize(bytes / safe)}/sec and ${(ops / safe).toFixed(4)} ops/sec)`;
}

/**
 * qemu-io's `-C` line: "bytes,ops,h:mm:ss.cc,bytes/sec,ops/sec" (observed: `64,1,0:00:00.00,74041.081,1156.892`).
 */
export function ioMachineReport(bytes: number, ops: number, seconds: number): string {
  const safe = Math.max(seconds, 1e-9);
  const whole = Math.floor(seconds);
  const hundredths = Math.floor((seconds - whole) * 100);
  const time = `${Math.floor(whole / 3600)}:${String(Math.floor(whole / 60) % 60).padStart(2, '0')}:${String(whole % 60).padStart(2, '0')}.${String(hundredths).padStart(2, '0')}`;
  return `${bytes},${ops},${time},${(bytes / safe).toFixed(3)},${(ops / safe).toFixed(3)}`;
}

/**
 * qemu-io's `-v` hex dump: the offset, each byte as two hex digits and a space, a space, then the bytes again with
 * only letters and digits shown (everything else is '.'). A short last line is not padded.
 */
export function hexDump(bytes: Uint8Array, offset: number): string {
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0') + ' ').join('');
    const text = Array.from(row, (b) => (isAlphanumeric(b) ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${(offset + at).toString(16).padStart(8, '0')}:  ${hex} ${text}`);
  }
  return lines.join('\n') + '\n';
}

function isAlphanumeric(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
}
