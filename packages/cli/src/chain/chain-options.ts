import { isCacheMode } from '../devices/cache-mode-device.js';
import { ExitError } from '../usage-error.js';

const FORMATS = new Set(['qcow2', 'raw']);

/** `-t` / `-T`: one of QEMU's cache modes, else qemu-img's refusal. The value is only checked (see each command). */
export function checkCacheMode(value: string | undefined): void {
  if (value !== undefined && !isCacheMode(value)) throw new ExitError(`Invalid cache option: ${value}`, 1);
}

/** `-F`: qemu-img judges the name before opening anything. */
export function checkBackingFormat(name: string): string {
  if (!FORMATS.has(name)) throw new ExitError(`Invalid format name: '${name}'`, 1);
  return name;
}

/** `-f`: qemu-img fails the open of FILE with the driver's name. */
export function checkImageFormat(name: string | undefined, file: string): string | undefined {
  if (name !== undefined && !FORMATS.has(name)) throw new ExitError(`Could not open '${file}': Unknown driver '${name}'`, 1);
  return name;
}
