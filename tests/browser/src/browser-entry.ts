import { httpStore } from '@q/http';
import { openImage } from '@q/qcow2';
import { BlobStore, isDiskError, type BlockDevice, type BlockStore } from '@q/raw';

/**
 * What the page runs, bundled for browsers by browser-bundle.ts: only the core packages' browser entries
 * (`@q/raw`, `@q/qcow2`, `@q/http`), never their `/node` subpaths. The test calls `readImages` through the
 * DevTools protocol (`import()` of this bundle, awaited), so a failure anywhere rejects with its own message.
 */

export interface ImageDigest {
  image: string;
  /** `http`: opened by URL from nginx with httpStore; `blob`: from Files (fetched whole first) in a BlobStore. */
  source: 'http' | 'blob';
  size: number;
  /** The layers opened, top first: the chain must come through whole. */
  layers: string[];
  sha256: string;
}

/**
 * Opens each of `images` (file names under `baseUrl`) over HTTP and again from Files holding the same bytes, and
 * hashes every guest byte. `files` lists every file the images need (a chain's lower layers too), so the BlobStore
 * has them all under their own names, as a user picking a chain's files in `<input type=file multiple>` would.
 */
export async function readImages(baseUrl: string, images: readonly string[], files: readonly string[]): Promise<ImageDigest[]> {
  // crypto.subtle exists only in secure contexts; http://127.0.0.1 is one, another host name would not be.
  if (!globalThis.isSecureContext || globalThis.crypto?.subtle === undefined) {
    throw new Error(`crypto.subtle is not available at ${location.href}: the page must be a secure context (loopback or https)`);
  }
  const digests: ImageDigest[] = [];
  const http = httpStore();
  for (const image of images) digests.push(await digestImage(new URL(image, baseUrl).href, http, image, 'http'));

  const blobs = new BlobStore();
  for (const name of files) {
    const response = await fetch(new URL(name, baseUrl));
    if (!response.ok) throw new Error(`fetching ${name} as a Blob: HTTP ${response.status}`);
    blobs.add(new File([await response.blob()], name));
  }
  for (const image of images) digests.push(await digestImage(image, blobs, image, 'blob'));
  return digests;
}

async function digestImage(name: string, store: BlockStore, image: string, source: ImageDigest['source']): Promise<ImageDigest> {
  try {
    const device = await openImage(name, { store });
    try {
      const layers: string[] = [];
      for (let layer: BlockDevice | undefined = device; layer !== undefined; layer = layer.backing) layers.push(layer.name);
      return { image, source, size: device.size, layers, sha256: await sha256Hex(await guestBytes(device)) };
    } finally {
      await device.close();
    }
  } catch (error) {
    // A DiskError's message leaves the code and the file to its fields, which the protocol does not carry.
    throw new Error(`${source} ${name}: ${describe(error)}`, { cause: error });
  }
}

function describe(error: unknown): string {
  if (!isDiskError(error)) return String(error);
  return `${error.code} ${error.message}${error.file === undefined ? '' : ` (file ${error.file})`}`;
}

/** Every guest byte, read in 256 KiB requests as a copy tool would (the images are a few MiB). */
async function guestBytes(device: BlockDevice): Promise<Uint8Array<ArrayBuffer>> {
  const bytes = new Uint8Array(device.size);
  const chunk = 256 * 1024;
  for (let offset = 0; offset < device.size; offset += chunk) {
    await device.read(bytes.subarray(offset, Math.min(device.size, offset + chunk)), offset);
  }
  return bytes;
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
