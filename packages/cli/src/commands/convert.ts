import { getopt, hasFlag, lastValue } from '../getopt.js';
import { parseInteger } from '../numbers.js';
import { LOCK_USERS } from '@q/vkd';
import { openImage, parseSnapshotParam } from '../open-source.js';
import { copyDevice } from '../copy-device.js';
import { openRawFileTarget, streamTarget, type RawTarget } from '../raw-target.js';
import { ExitError, UsageError } from '../usage-error.js';

export const convertUsage =
  'convert [-f fmt] [-O fmt] [-c] [-o options] [-l snapshot.name=S | -s S] [-B backing] [-p] [-q] [-m N] [-n] [-U] SRC DST';

// Measured on tmpfs: 4 MiB reads beat 1-2 MiB by 10-20% (fewer calls, same overlap); 8 in flight is 32 MiB.
const CHUNK_BYTES = 4 * 1024 * 1024;

/** `qcow convert`: copy an image's guest bytes to a raw file (sparse) or to stdout (`-`). */
export async function convertCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, {
    short: 'f:O:co:l:s:B:F:pqm:nUWS:t:T:hC',
    long: { 'force-share': false, 'target-is-zero': false, 'image-opts': false, 'target-image-opts': false, untrusted: false },
  });
  const [source, destination, ...extra] = parsed.operands;
  if (source === undefined || destination === undefined) throw new UsageError('Expecting a source and a destination');
  if (extra.length > 0) throw new UsageError('Converting several sources into one image is not supported');
  const outputFormat = lastValue(parsed, 'O') ?? 'raw';
  if (outputFormat === 'qcow2') throw new ExitError('writing qcow2 images is not implemented yet; use -O raw', 1);
  if (outputFormat !== 'raw') throw new UsageError(`Unknown file format '${outputFormat}'`);
  if (hasFlag(parsed, 'c')) throw new ExitError('Compression not supported for this file format', 1);
  if (lastValue(parsed, 'B') !== undefined) throw new ExitError('Backing file not supported for file format \'raw\'', 1);
  if (lastValue(parsed, 'o') !== undefined) throw new ExitError(`Invalid options for file format 'raw'`, 1);

  const snapshotParam = lastValue(parsed, 'l');
  const snapshotName = lastValue(parsed, 's');
  const snapshot = snapshotParam !== undefined ? parseSnapshotParam(snapshotParam) : snapshotName;
  const parallelText = lastValue(parsed, 'm');
  const parallel = parallelText === undefined ? 8 : parseInteger(parallelText, 'number of coroutines');
  if (parallel < 1 || parallel > 16) throw new UsageError('Invalid number of coroutines. Allowed number of coroutines is between 1 and 16');
  const sparseText = lastValue(parsed, 'S');
  const progress = hasFlag(parsed, 'p') && !hasFlag(parsed, 'q');

  const device = await openImage(source, { format: lastValue(parsed, 'f'), snapshot, forceShare: hasFlag(parsed, 'U', 'force-share'), lockUser: LOCK_USERS.copySource, untrusted: hasFlag(parsed, 'untrusted') });
  let target: RawTarget | undefined;
  try {
    const toStdout = destination === '-' || destination === '/dev/stdout';
    target = toStdout
      ? streamTarget(process.stdout)
      : await openRawFileTarget(destination, device.size, { existing: hasFlag(parsed, 'n'), sparse: sparseText !== '0' });
    const progressStream = toStdout ? process.stderr : process.stdout;
    let shown = -1;
    await copyDevice(device, target, {
      parallel,
      chunkBytes: CHUNK_BYTES,
      onProgress: progress
        ? (done, total) => {
            const percent = Math.floor((done / total) * 10000) / 100;
            if (percent !== shown) progressStream.write(`    (${percent.toFixed(2)}/100%)\r`);
            shown = percent;
          }
        : undefined,
    });
    if (progress) progressStream.write(shown === 100 ? '\n' : '    (100.00/100%)\n');
    const finished = target;
    target = undefined;
    await finished.close();
  } finally {
    await Promise.allSettled([device.close(), target?.close()]);
  }
  return 0;
}
