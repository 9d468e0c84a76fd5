import type { BlockDevice } from '@q/raw';
import { getopt, hasFlag, lastValue } from '../getopt.js';
import { parseStrtol, parseSuffixedSize } from '../numbers.js';
import { openImage } from '../open-source.js';
import { ExitError, UsageError } from '../usage-error.js';
import { describeError, openFailure } from '../describe-error.js';
import { writeOut } from '../process-output.js';

export interface BenchPlan {
  count: number;
  depth: number;
  size: number;
  step: number;
  offset: number;
  write: boolean;
  pattern: number;
  flushInterval: number;
  drain: boolean;
}

/**
 * `qcow bench`: qemu-img bench. `count` requests of `size` bytes, `depth` in flight, at `offset`, `offset + step`,
 * ... wrapping at the end of the disk; every `flushInterval` requests a flush (after the requests in flight
 * complete, unless --no-drain). Prints qemu-img's two lines; the time covers the requests, not open and close.
 */
export async function benchCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, {
    short: 'c:d:f:hi:no:qs:S:t:wU',
    long: { 'flush-interval': true, 'no-drain': false, pattern: true, 'image-opts': false, 'force-share': false, object: true, untrusted: false },
  });
  const [file, ...extra] = parsed.operands;
  if (file === undefined || extra.length > 0) throw new UsageError('Expecting one image file name');
  // qemu-img reads the counts as strtol does (base 0: "0x10" is 16) and the sizes with its suffixes.
  const number = (short: string, what: string, fallback: number, min: number, max = Infinity): number => {
    const text = lastValue(parsed, short);
    if (text === undefined) return fallback;
    const value = parseStrtol(text);
    if (value === undefined || value < min || value > max) throw new ExitError(`Invalid ${what} specified`, 1);
    return value;
  };
  const size = sizeOption(lastValue(parsed, 's'), 'buffer size', 4096);
  const plan: BenchPlan = {
    count: number('c', 'request count', 75000, 0),
    // qemu-img takes a depth of 0 and then waits forever; here it is refused.
    depth: number('d', 'queue depth', 64, 1),
    size,
    step: sizeOption(lastValue(parsed, 'S'), 'step_size', size),
    offset: sizeOption(lastValue(parsed, 'o'), 'offset', 0),
    write: hasFlag(parsed, 'w'),
    pattern: number('pattern', 'pattern byte', 0, 0, 255),
    flushInterval: number('flush-interval', 'flush interval', 0, 0),
    drain: !hasFlag(parsed, 'no-drain'),
  };
  if (plan.flushInterval > 0 && !plan.write) throw new ExitError('--flush-interval is only available in write tests', 1);

  // -i threads: libuv's thread pool (QEMU's default mode); otherwise blocking I/O on this thread, which is what
  // a CLI can afford and the faster of the two for requests served from the page cache.
  const aio = lastValue(parsed, 'i') ?? 'native';
  if (!['threads', 'native', 'io_uring'].includes(aio)) throw new ExitError(`Invalid aio option: ${aio}`, 1);
  let device: BlockDevice;
  try {
    device = await openImage(file, { format: lastValue(parsed, 'f'), writable: plan.write, blockingIo: aio !== 'threads', forceShare: hasFlag(parsed, 'U', 'force-share'), untrusted: hasFlag(parsed, 'untrusted') });
  } catch (error) {
    throw new ExitError(openFailure(error, file), 1);
  }
  try {
    if (!hasFlag(parsed, 'q')) {
      writeOut(
        `Sending ${plan.count} ${plan.write ? 'write' : 'read'} requests, ${plan.size} bytes each, ${plan.depth} in parallel ` +
          `(starting at offset ${plan.offset}, step size ${plan.step})\n`,
      );
      if (plan.flushInterval > 0) writeOut(`Sending flush every ${plan.flushInterval} requests\n`);
    }
    const started = process.hrtime.bigint();
    await runBench(device, plan);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (!hasFlag(parsed, 'q')) writeOut(`Run completed in ${seconds.toFixed(3)} seconds.\n`);
  } catch (error) {
    throw new ExitError(`${plan.write ? 'Write' : 'Read'} failed: ${describeError(error, file)}`, 1);
  } finally {
    await device.close();
  }
  return 0;
}

function sizeOption(text: string | undefined, what: string, fallback: number): number {
  return text === undefined ? fallback : parseSuffixedSize(text, what);
}

/**
 * Keeps `depth` requests in flight until `count` have been sent. A flush is due every `flushInterval` completed
 * requests (not after the last):
 * with drain, no request starts until the requests in flight have completed and the flush has; without it the
 * flush runs alongside them.
 */
export async function runBench(device: BlockDevice, plan: BenchPlan): Promise<void> {
  if (plan.size > device.size) throw new ExitError('buffer size is larger than the image', 1);
  let sent = 0;
  let offset = plan.offset;
  let done = 0;
  let barrier: Promise<void> | undefined;
  const requests = new Set<Promise<void>>();
  const flushes: Array<Promise<void>> = [];
  const nextOffset = (): number => {
    // qemu-img bench: the offset advances by the step and wraps at the end of the image.
    let at = offset;
    if (at + plan.size > device.size) at = 0;
    offset = (at + plan.step) % device.size;
    return at;
  };
  const worker = async (buffer: Uint8Array): Promise<void> => {
    for (;;) {
      while (barrier !== undefined) await barrier;
      if (sent >= plan.count) return;
      sent++;
      const at = nextOffset();
      const request = plan.write ? device.write(buffer, at) : device.read(buffer, at);
      requests.add(request);
      try {
        await request;
      } finally {
        requests.delete(request);
      }
      done++;
      if (plan.flushInterval > 0 && done % plan.flushInterval === 0 && done < plan.count) {
        if (plan.drain) {
          const inFlight = [...requests];
          barrier = (async () => {
            await Promise.allSettled(inFlight);
            await device.flush();
          })().finally(() => (barrier = undefined));
        } else {
          flushes.push(device.flush());
        }
      }
    }
  };
  const workers: Array<Promise<void>> = [];
  for (let i = 0; i < Math.min(plan.depth, plan.count); i++) workers.push(worker(new Uint8Array(plan.size).fill(plan.pattern)));
  await Promise.all(workers);
  await Promise.all(flushes);
}
