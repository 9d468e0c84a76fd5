import type { BlockStatus } from './block-device.js';
import type { BlockFile, FileRun } from './block-file.js';

/** How far one `runAt` call looks ahead: the run it returns serves every later extent that falls inside it. */
const LOOKAHEAD = 2 ** 40;

/**
 * Splits the extents of a block status that lie plainly in `file` (kind `data` with a host offset) by what the
 * file holds under them (SEEK_DATA/SEEK_HOLE, through `runAt`): a part that is a hole reads as zeros without being
 * stored, and `asHole` says how the layer reports it (a raw file: a zero extent; qcow2: data that is zero, as
 * qemu-img map shows it). A file without `runAt` cannot tell, and the extents stay as they are: reporting a hole
 * as data costs a read, never bytes.
 *
 * Runs are asked for once and reused within this call only: a write may fill a hole at any time, so an answer
 * kept longer could hide data.
 */
export async function splitAtHostHoles(file: BlockFile, extents: BlockStatus[], asHole: (part: BlockStatus) => BlockStatus): Promise<BlockStatus[]> {
  if (file.runAt === undefined) return extents;
  const out: BlockStatus[] = [];
  let run: { start: number; end: number; data: boolean } | undefined;
  for (const extent of extents) {
    const host = extent.hostOffset;
    if (extent.kind !== 'data' || host === undefined || extent.compressed === true) {
      out.push(extent);
      continue;
    }
    for (let done = 0; done < extent.length; ) {
      const at = host + done;
      if (run === undefined || at < run.start || at >= run.end) run = await runFrom(file, at);
      const length = Math.min(extent.length - done, run.end - at);
      const part: BlockStatus = { ...extent, offset: extent.offset + done, length, hostOffset: at };
      out.push(run.data ? part : asHole(part));
      done += length;
    }
  }
  return out;
}

async function runFrom(file: BlockFile, offset: number): Promise<{ start: number; end: number; data: boolean }> {
  const found: FileRun = await file.runAt!(offset, LOOKAHEAD);
  // A store answering with an empty run would stall the walk: take the rest as data (the safe answer).
  if (found.length <= 0) return { start: offset, end: offset + LOOKAHEAD, data: true };
  return { start: offset, end: offset + found.length, data: found.data };
}
