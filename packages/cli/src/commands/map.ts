import { chainStatus, continuesRun, type ChainExtent } from '@q/backing';
import { getopt, hasFlag, lastValue } from '../getopt.js';
import { parseSuffixedSize } from '../numbers.js';
import { openImageOrExit } from '../open-source.js';
import { ExitError, UsageError } from '../usage-error.js';
import { writeOut } from '../process-output.js';

/** Extents are gathered a window at a time so memory follows the number of extents, not the disk size. */
const WINDOW = 2 ** 40;

/** `qcow map`: qemu-img map, walking the backing chain the same way (depth, present, zero, data, offset). */
export async function mapCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, {
    short: 'f:hU',
    long: { output: true, 'start-offset': true, 'max-length': true, 'force-share': false, 'image-opts': false, untrusted: false },
  });
  const output = lastValue(parsed, 'output') ?? 'human';
  if (output !== 'human' && output !== 'json') throw new ExitError('--output must be used with human or json as argument.', 1);
  const [file, ...extra] = parsed.operands;
  if (file === undefined || extra.length > 0) throw new UsageError('Expecting one image file name');
  const startText = lastValue(parsed, 'start-offset');
  const lengthText = lastValue(parsed, 'max-length');
  const device = await openImageOrExit(file, { format: lastValue(parsed, 'f'), blockingIo: true, forceShare: hasFlag(parsed, 'U', 'force-share'), untrusted: hasFlag(parsed, 'untrusted') });
  try {
    const start = startText === undefined ? 0 : parseSuffixedSize(startText, 'start offset');
    const end = Math.min(device.size, lengthText === undefined ? device.size : start + parseSuffixedSize(lengthText, 'length'));
    const out = output === 'json' ? jsonPrinter() : humanPrinter();
    let pending: ChainExtent | undefined;
    for (let offset = start; offset < end; offset += WINDOW) {
      for (const extent of await chainStatus(device, offset, Math.min(WINDOW, end - offset))) {
        if (pending !== undefined && continuesRun(pending, extent)) pending.length += extent.length;
        else {
          if (pending !== undefined) out.entry(pending);
          pending = { ...extent };
        }
      }
    }
    if (pending !== undefined) out.entry(pending);
    out.end();
  } finally {
    await device.close();
  }
  return 0;
}

/** qemu-img's JSON layout: one entry per line, the array brackets on the first and last. */
function jsonPrinter(): { entry(e: ChainExtent): void; end(): void } {
  let first = true;
  return {
    entry(e) {
      const offset = e.hostOffset === undefined ? '' : `, "offset": ${e.hostOffset}`;
      writeOut(
        `${first ? '[' : ',\n'}{ "start": ${e.offset}, "length": ${e.length}, "depth": ${e.depth}, "present": ${e.present}, "zero": ${e.zero}, "data": ${e.data}${offset}}`,
      );
      first = false;
    },
    end() {
      writeOut(first ? '[]\n' : ']\n');
    },
  };
}

/** qemu-img's human layout: only ranges with data (not known to read as zeros) at a known host offset, in columns of 16. */
function humanPrinter(): { entry(e: ChainExtent): void; end(): void } {
  const hex = (value: number): string => (value === 0 ? '0' : '0x' + value.toString(16));
  writeOut('Offset'.padEnd(16) + 'Length'.padEnd(16) + 'Mapped to'.padEnd(16) + 'File\n');
  return {
    entry(e) {
      if (e.data && e.hostOffset === undefined) {
        // As qemu-img: the human form has no way to show data that has no plain host offset.
        throw new ExitError('File contains external, encrypted or compressed clusters.', 1);
      }
      // Data in a hole of the host file is left out, as qemu-img leaves it out.
      if (!e.data || e.zero || e.hostOffset === undefined) return;
      writeOut(hex(e.offset).padEnd(16) + hex(e.length).padEnd(16) + hex(e.hostOffset).padEnd(16) + `${e.hostFile}\n`);
    },
    end() {},
  };
}
