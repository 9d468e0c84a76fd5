import { allocationDepthExtents } from './allocation-depth.js';
import { allocationExtents, type AllocationExtent } from './allocation-status.js';
import { dirtyBitmapExtents } from './dirty-bitmap-source.js';
import type { NbdExport } from './nbd-export.js';
import { BASE_ALLOCATION, QEMU_ALLOCATION_DEPTH, QEMU_DIRTY_BITMAP_PREFIX } from './protocol.js';

/** One metadata context an export offers: its name, the id BLOCK_STATUS chunks carry, and how to answer it. */
export interface MetaContext {
  readonly name: string;
  readonly id: number;
  extents(offset: number, length: number): Promise<AllocationExtent[]>;
}

/** The id we give `base:allocation` in NBD_REP_META_CONTEXT and BLOCK_STATUS chunks; any value works, 0 is avoided. */
export const BASE_ALLOCATION_ID = 1;
const ALLOCATION_DEPTH_ID = 2;
const FIRST_BITMAP_ID = 3;

/**
 * The contexts of an export, in the order qemu-nbd lists them (base:allocation, qemu:allocation-depth, then the
 * bitmaps). Ids depend only on the export, so a context keeps its id from one NBD_OPT_SET_META_CONTEXT to the next.
 * A bitmap named twice is offered once: two contexts of one name could not be told apart by a client.
 */
export function exportContexts(nbdExport: NbdExport): MetaContext[] {
  const { device } = nbdExport;
  const contexts: MetaContext[] = [{ name: BASE_ALLOCATION, id: BASE_ALLOCATION_ID, extents: (offset, length) => allocationExtents(device, offset, length) }];
  if (nbdExport.allocationDepth === true) {
    contexts.push({ name: QEMU_ALLOCATION_DEPTH, id: ALLOCATION_DEPTH_ID, extents: (offset, length) => allocationDepthExtents(device, offset, length) });
  }
  const seen = new Set<string>();
  for (const bitmap of nbdExport.dirtyBitmaps ?? []) {
    if (seen.has(bitmap.name)) continue;
    seen.add(bitmap.name);
    contexts.push({
      name: QEMU_DIRTY_BITMAP_PREFIX + bitmap.name,
      id: FIRST_BITMAP_ID + seen.size - 1,
      extents: (offset, length) => dirtyBitmapExtents(bitmap, offset, length),
    });
  }
  return contexts;
}

/**
 * The contexts a LIST query finds, as qemu-nbd answers: no query lists everything; a namespace alone (`base:`,
 * `qemu:`) lists that namespace; `qemu:dirty-bitmap:` alone lists every bitmap; otherwise only an exact name
 * matches. Anything else (an unknown namespace, a name without its colon) is valid and finds nothing. Each context
 * is listed once, in the export's order, whatever order and repeats the queries came in.
 */
export function listContexts(contexts: readonly MetaContext[], queries: readonly string[]): MetaContext[] {
  if (queries.length === 0) return [...contexts];
  return contexts.filter((context) => queries.some((query) => query === context.name || (isWildcard(query) && context.name.startsWith(query))));
}

/** The contexts a SET selects: exact names only (qemu-nbd takes no wildcards in SET), once each, in export order. */
export function selectContexts(contexts: readonly MetaContext[], queries: readonly string[]): MetaContext[] {
  return contexts.filter((context) => queries.includes(context.name));
}

/** The prefixes qemu-nbd expands in LIST: a bare namespace, and qemu's bitmap prefix. */
function isWildcard(query: string): boolean {
  return query === QEMU_DIRTY_BITMAP_PREFIX || /^[^:]+:$/.test(query);
}
