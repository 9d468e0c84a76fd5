import { Qcow2Image } from '@q/qcow2';
import { checkWritable, DiskError } from '@q/raw';
import { getopt, lastValue } from '../getopt.js';
import { formatInfoHuman } from '../image-info-human.js';
import { imageInfo } from '../image-info.js';
import { ioSize } from '../io-report.js';
import { IoCommandError, ioNumber } from './io-args.js';
import type { IoSession } from './io-session.js';
import { writeOut } from '../process-output.js';

/**
 * `info`: the format, the cluster size, where the VM state would start (qcow2 keeps it past the last byte the L1
 * table can map, rounded to whole L2 tables) and qemu-img info's "Format specific information" block.
 */
export async function infoCommand(session: IoSession): Promise<boolean> {
  const { device } = session;
  const image = device instanceof Qcow2Image ? device : undefined;
  const geometry = image?.metadata.geometry;
  const clusterSize = geometry?.clusterSize ?? 0;
  const vmStateOffset = geometry === undefined ? 0 : Math.ceil(device.size / geometry.l2Coverage) * geometry.l2Coverage;
  let text = `format name: ${device.format}\ncluster size: ${ioSize(clusterSize)}\nvm state offset: ${ioSize(vmStateOffset)}\n`;
  if (image !== undefined) {
    const human = formatInfoHuman(await imageInfo(device, device.name));
    const at = human.indexOf('Format specific information:');
    if (at >= 0) text += human.slice(at);
  }
  writeOut(text);
  return true;
}

/** `length`: the virtual size in qemu-io's units ("1 MiB"). */
export async function lengthCommand(session: IoSession): Promise<boolean> {
  writeOut(`${ioSize(session.device.size)}\n`);
  return true;
}

/**
 * Runs of [offset, offset + length) that this layer allocates (data or zero) or leaves to its backing file, the
 * neighbouring runs of the same kind joined, as qemu-io's is_allocated answers.
 */
async function allocationRuns(session: IoSession, offset: number, length: number): Promise<Array<{ offset: number; length: number; allocated: boolean }>> {
  const runs: Array<{ offset: number; length: number; allocated: boolean }> = [];
  if (length <= 0) return runs;
  for (const extent of await session.device.blockStatus(offset, length)) {
    const allocated = extent.kind !== 'unallocated';
    const last = runs[runs.length - 1];
    if (last !== undefined && last.allocated === allocated && last.offset + last.length === extent.offset) last.length += extent.length;
    else runs.push({ offset: extent.offset, length: extent.length, allocated });
  }
  return runs;
}

/** `map`: every run of the disk, allocated in this layer or not. */
export async function mapCommand(session: IoSession): Promise<boolean> {
  const hex = (n: number): string => `0x${n.toString(16)}`;
  let text = '';
  for (const run of await allocationRuns(session, 0, session.device.size)) {
    text += `${ioSize(run.length)} (${hex(run.length)}) bytes ${run.allocated ? '    allocated' : 'not allocated'} at offset ${ioSize(run.offset)} (${hex(run.offset)})\n`;
  }
  writeOut(text);
  return true;
}

/** `alloc offset [count]`: how many of `count` bytes (default 512, cut at the end of the disk) this layer holds. */
export async function allocCommand(session: IoSession, words: string[]): Promise<boolean> {
  const [offsetText, countText] = words;
  const offset = ioNumber(offsetText!);
  const requested = countText === undefined ? 512 : ioNumber(countText);
  const count = Math.max(0, Math.min(requested, session.device.size - offset));
  let allocated = 0;
  for (const run of await allocationRuns(session, offset, count)) if (run.allocated) allocated += run.length;
  writeOut(`${allocated}/${count} bytes allocated at offset ${ioSize(offset)}\n`);
  return true;
}

/** A device that can change its size (qcow2 images here grow; raw files and shrinking are refused). */
interface Resizable {
  resize(size: number): Promise<void>;
}

function isResizable(device: object): device is Resizable {
  return typeof (device as Partial<Resizable>).resize === 'function';
}

const PREALLOCATION_MODES = ['off', 'metadata', 'falloc', 'full'];

/** `truncate [-m prealloc_mode] off`: sets the virtual size (qemu-io's words for its refusals). */
export async function truncateCommand(session: IoSession, words: string[]): Promise<boolean> {
  const parsed = getopt(words, { short: 'm:' });
  const mode = lastValue(parsed, 'm') ?? 'off';
  if (!PREALLOCATION_MODES.includes(mode)) throw new IoCommandError(`qcow io: Invalid preallocation mode '${mode}'`);
  const [sizeText] = parsed.operands;
  if (sizeText === undefined) throw new IoCommandError('usage: truncate [-m prealloc_mode] off');
  const size = ioNumber(sizeText);
  const { device } = session;
  checkWritable(device);
  if (mode !== 'off') throw new IoCommandError(`qcow io: Preallocation mode '${mode}' is not supported by truncate`);
  if (device.format === 'qcow2' && size % 512 !== 0) throw new IoCommandError('qcow io: The new size must be a multiple of 512');
  if (!isResizable(device)) throw new DiskError('E_UNSUPPORTED', `resizing a ${device.format} image is not supported`, { file: device.name });
  await device.resize(size);
  return true;
}
