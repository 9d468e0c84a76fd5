import { Qcow2Image } from '@q/qcow2';
import { isDiskError, type BlockDevice } from '@q/raw';
import { describeError, openFailure } from '../describe-error.js';
import { getopt, hasFlag, lastValue } from '../getopt.js';
import { snapshotHeader, snapshotRow } from '../image-info-human.js';
import { snapshotInfo } from '../image-info.js';
import { openImage } from '../open-source.js';
import { ExitError, UsageError } from '../usage-error.js';
import { writeOut } from '../process-output.js';

type Action = { kind: 'list' } | { kind: 'create' | 'apply' | 'delete'; name: string };

/**
 * `qcow snapshot`: qemu-img snapshot. Lists (the default), creates, applies or deletes internal snapshots, with
 * qemu-img's messages and exit codes. Only the top image is opened; its backing file is not needed.
 */
export async function snapshotCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, { short: 'la:c:d:f:hqU', long: { 'image-opts': false, 'force-share': false, object: true, untrusted: false } });
  const [file, ...extra] = parsed.operands;
  if (file === undefined || extra.length > 0) throw new UsageError('Expecting one image file name');
  const actions: Action[] = [];
  for (const { name, value } of parsed.options) {
    if (name === 'l') actions.push({ kind: 'list' });
    if (name === 'c') actions.push({ kind: 'create', name: value! });
    if (name === 'a') actions.push({ kind: 'apply', name: value! });
    if (name === 'd') actions.push({ kind: 'delete', name: value! });
  }
  if (actions.length > 1) throw new UsageError('Cannot mix \'-l\', \'-a\', \'-c\', \'-d\'');
  const action = actions[0] ?? { kind: 'list' };
  const format = lastValue(parsed, 'f');
  let device: BlockDevice;
  try {
    device = await openImage(file, { format, writable: action.kind !== 'list', ignoreBacking: true, blockingIo: true, forceShare: hasFlag(parsed, 'U', 'force-share'), untrusted: hasFlag(parsed, 'untrusted') });
  } catch (error) {
    throw new ExitError(openFailure(error, file), 1);
  }
  try {
    // qemu-img lists nothing for a raw image (no snapshots there) and refuses the rest, each in its own words.
    if (!(device instanceof Qcow2Image)) {
      if (action.kind === 'list') return 0;
      throw new ExitError(`Could not ${verb(action)}: ${RAW_REFUSALS[action.kind]}`, 1);
    }
    await run(device, action, file, hasFlag(parsed, 'q'));
  } finally {
    await device.close();
  }
  return 0;
}

/** What qemu-img 7.2 says when a raw image is asked to create, apply or delete a snapshot. */
const RAW_REFUSALS = {
  create: '-95 (Operation not supported)',
  apply: 'Block driver does not support snapshots',
  delete: 'snapshot not found',
} as const;

function verb(action: Action): string {
  switch (action.kind) {
    case 'list':
      return 'list snapshots';
    case 'create':
      return `create snapshot '${action.name}'`;
    case 'apply':
      return `apply snapshot '${action.name}'`;
    case 'delete':
      return `delete snapshot '${action.name}'`;
  }
}

async function run(image: Qcow2Image, action: Action, file: string, quiet: boolean): Promise<void> {
  try {
    switch (action.kind) {
      case 'list':
        if (quiet || image.snapshots.length === 0) return;
        writeOut(['Snapshot list:', snapshotHeader(), ...image.snapshots.map((s) => snapshotRow(snapshotInfo(s)))].join('\n') + '\n');
        return;
      case 'create':
        await image.createSnapshot(action.name);
        return;
      case 'apply':
        await image.applySnapshot(action.name);
        return;
      case 'delete':
        await image.deleteSnapshot(action.name);
        return;
    }
  } catch (error) {
    if (error instanceof ExitError) throw error;
    // qemu-img names no file in these reasons (a missing snapshot; apply refused while the image has bitmaps).
    const reason = !isDiskError(error)
      ? describeError(error, file)
      : error.code === 'E_NO_SUCH'
        ? action.kind === 'apply' ? 'Failed to load snapshot: No such file or directory' : 'snapshot not found'
        : error.code === 'E_UNSUPPORTED' && action.kind === 'apply' ? error.message : describeError(error, file);
    throw new ExitError(`Could not ${verb(action)}: ${reason}`, 1);
  }
}
