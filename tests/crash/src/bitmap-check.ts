import { Qcow2Image } from '@q/qcow2';
import { nodeCodecs } from '@q/qcow2/node';
import { MemoryBlockFile } from '@q/raw';

/** The bits each maintained bitmap had before the session and had after it, and the base's guest bytes. */
export interface BitmapAnswers {
  names: readonly string[];
  /** The bits before the session (JSON of the extents), and the guest bytes then: a crash before any change. */
  base: Map<string, string>;
  baseGuest: Uint8Array;
  /** The bits the uninterrupted session stored at close. */
  final: Map<string, string>;
}

async function openBytes(bytes: Uint8Array): Promise<Qcow2Image> {
  return Qcow2Image.open(new MemoryBlockFile(bytes, { writable: false }), { codecs: nodeCodecs(), ignoreBacking: true });
}

async function bitsOf(image: Qcow2Image, name: string): Promise<string> {
  return JSON.stringify(await image.dirtyExtents(name, 0, image.size));
}

async function guestOf(image: Qcow2Image): Promise<Uint8Array> {
  const guest = new Uint8Array(image.size);
  await image.read(guest, 0);
  return guest;
}

export async function bitmapAnswers(names: readonly string[], base: Uint8Array, final: Uint8Array): Promise<BitmapAnswers> {
  const [before, after] = [await openBytes(base.slice()), await openBytes(final.slice())];
  try {
    const answers: BitmapAnswers = { names, base: new Map(), final: new Map(), baseGuest: await guestOf(before) };
    const finalGuest = await guestOf(after);
    for (const name of names) {
      answers.base.set(name, await bitsOf(before, name));
      answers.final.set(name, await bitsOf(after, name));
      // The uninterrupted session must itself be right: every granule whose bytes changed is dirty at the end.
      const info = after.bitmaps().find((bitmap) => bitmap.name === name);
      if (info === undefined || info.flags.includes('in-use')) throw new Error(`after the session, bitmap '${name}' is ${info === undefined ? 'gone' : 'in_use'}`);
      for (const extent of await after.dirtyExtents(name, 0, after.size)) {
        if (extent.dirty) continue;
        const end = extent.offset + extent.length;
        if (!sameGuest(finalGuest, answers.baseGuest, extent.offset, end)) {
          throw new Error(`after the session, bitmap '${name}' calls ${extent.offset}+${extent.length} clean, but the guest changed there`);
        }
      }
    }
    return answers;
  } finally {
    await Promise.all([before.close(), after.close()]);
  }
}

/**
 * The bitmap contract at one crash point: every maintained bitmap is still there (the autoclear bit kept), and one
 * that reads consistent (not in_use) misses nothing: each granule whose guest bytes differ from the base is dirty,
 * and each granule dirty before the session still is (inside the disk's current size). A bitmap may be consistent
 * mid-session (a resize or a bitmap command stores it), so its bits are judged, not its moment.
 */
export async function checkBitmaps(bytes: Uint8Array, answers: BitmapAnswers): Promise<string[]> {
  const problems: string[] = [];
  const image = await openBytes(bytes.slice());
  try {
    const listed = image.bitmaps();
    const guest = await guestOf(image);
    for (const name of answers.names) {
      const info = listed.find((bitmap) => bitmap.name === name);
      if (info === undefined) {
        problems.push(`bitmap '${name}' is gone (bitmaps: ${JSON.stringify(listed)})`);
        continue;
      }
      if (info.flags.includes('in-use')) continue;
      const clean = (await image.dirtyExtents(name, 0, image.size)).filter((extent) => !extent.dirty);
      const baseDirty = (JSON.parse(answers.base.get(name)!) as Array<{ offset: number; length: number; dirty: boolean }>).filter((extent) => extent.dirty);
      for (const { offset, length } of clean) {
        if (!sameGuest(guest, answers.baseGuest, offset, offset + length)) {
          problems.push(`bitmap '${name}' reads consistent but calls ${offset}+${length} clean where the guest changed`);
        } else if (baseDirty.some((dirty) => dirty.offset < offset + length && offset < dirty.offset + dirty.length)) {
          problems.push(`bitmap '${name}' reads consistent but lost the bits from before the session in ${offset}+${length}`);
        }
      }
    }
  } finally {
    await image.close();
  }
  return problems;
}

/** Whether two disks read the same over [start, end); bytes past a disk's end read as zeros (a resize grew it). */
function sameGuest(a: Uint8Array, b: Uint8Array, start: number, end: number): boolean {
  const padded = (disk: Uint8Array): Uint8Array => {
    const part = new Uint8Array(end - start);
    part.set(disk.subarray(Math.min(start, disk.length), Math.min(end, disk.length)));
    return part;
  };
  return Buffer.compare(padded(a), padded(b)) === 0;
}
