import { Qcow2Image } from '@q/qcow2';
import { nodeCodecs } from '@q/qcow2/node';
import { MemoryBlockFile } from '@q/raw';

/** What each maintained bitmap may read as in a crash image that shows it consistent, and the base's guest bytes. */
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
        if (Buffer.compare(finalGuest.subarray(extent.offset, end), answers.baseGuest.subarray(extent.offset, end)) !== 0) {
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
 * The bitmap contract at one crash point: every maintained bitmap is still there (the autoclear bit kept); one
 * that reads consistent (not in_use) holds either the bits the session stored at close, or the bits from before
 * the session while the guest still reads as before it. Anything else is a consistent bitmap with wrong bits.
 */
export async function checkBitmaps(bytes: Uint8Array, answers: BitmapAnswers): Promise<string[]> {
  const problems: string[] = [];
  const image = await openBytes(bytes.slice());
  try {
    const listed = image.bitmaps();
    for (const name of answers.names) {
      const info = listed.find((bitmap) => bitmap.name === name);
      if (info === undefined) {
        problems.push(`bitmap '${name}' is gone (bitmaps: ${JSON.stringify(listed)})`);
        continue;
      }
      if (info.flags.includes('in-use')) continue;
      const bits = await bitsOf(image, name);
      if (bits === answers.final.get(name)) continue;
      if (bits === answers.base.get(name)) {
        if (Buffer.compare(await guestOf(image), answers.baseGuest) !== 0) problems.push(`bitmap '${name}' reads consistent with the bits from before the session, but the guest changed`);
        continue;
      }
      problems.push(`bitmap '${name}' reads consistent with bits neither from before nor from the end of the session: ${bits.slice(0, 300)}`);
    }
  } finally {
    await image.close();
  }
  return problems;
}
