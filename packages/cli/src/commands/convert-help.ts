import { createOptionsHelp, wantsOptionsHelp } from '../create-options-help.js';
import { allValues, getopt, lastValue } from '../getopt.js';
import { UsageError } from '../usage-error.js';
import { writeOut } from '../process-output.js';

/*
 * convert's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run).
 */

export const convertUsage =
  'convert [-f fmt] [-O fmt] [-c] [-o options] [-l snapshot.name=S | -s S] [-B backing [-F fmt]] [-n [--target-is-zero]] [-S N] [-t cache] [-T src_cache] [-p] [-q] [-m N] [-W] [-U] [--salvage] [--bitmaps [--skip-broken-bitmaps]] SRC [SRC2 ...] DST';

export const convertHelp = `Copies an image's guest contents into a new image, as qemu-img convert (several sources: end to end):
  -f FMT               source format (default: probed)
  -O FMT               target format (default raw)
  -o OPTIONS           target creation options (-o help lists them for the -O format)
  -c                   compress the target's clusters
  -l SNAPSHOT_PARAM    copy an internal snapshot: 'snapshot.id=[ID],snapshot.name=[NAME]' or '[ID_OR_NAME]'
  -s SNAPSHOT          copy an internal snapshot by id or name (SRC@SNAP does the same)
  -B BACKING           the target's backing file: only what differs from it is written
  -F FMT               the backing file's format (with -B)
  -p                   show progress (on a terminal)
  -q                   print nothing but errors
  -m N                 requests in flight (1-16, default 8)
  -W                   accepted; writes stay in order (deterministic output)
  -n                   write into an existing target instead of creating it
  --target-is-zero     with -n: the target already reads as zeros, so zeros are not written to it
  -S SIZE              zero runs of at least SIZE bytes stay holes; 0 writes everything
  -t CACHE             the target's cache mode (default unsafe: a raw target is not synced at the end, as
                       qemu-img does; writeback, none, writethrough, directsync sync it once the copy is done)
  -T CACHE             the source's cache mode (checked; reads go through the page cache)
  -U, --force-share    read beside a writer that holds the source
  --bitmaps            copy the source's persistent bitmaps (qcow2 to qcow2)
  --skip-broken-bitmaps  with --bitmaps: skip inconsistent bitmaps (with a warning) instead of refusing
  --salvage            unreadable ranges (read errors, damaged metadata) become zeros, with a warning each
  --untrusted          the source comes from someone untrusted: backing and data files must stay in its
                       directory, backing files are never probed, URLs are refused, metadata limits are tighter
DST - writes the guest bytes to standard output.`;

/**
 * qemu-img convert's option letters and long options (7.2), so that `-o help` is found wherever it stands on the
 * line; the conversion itself parses its own.
 */
const CONVERT_OPTIONS = {
  short: 'hf:O:B:Cco:l:S:pt:T:qnm:WUr:F:s:',
  long: {
    object: true,
    'image-opts': false,
    'target-image-opts': false,
    'target-is-zero': false,
    bitmaps: false,
    'skip-broken-bitmaps': false,
    salvage: false,
    'force-share': false,
    untrusted: false,
  },
};

/**
 * Answers `qcow convert ... -o help` (or `-o ?`) as qemu-img does, before anything is opened: the creation options
 * of the -O format, merged with the local file's when a target is named (two operands). Returns undefined when help
 * was not asked for, or when the line does not parse (convert itself then reports it).
 */
export function convertOptionsHelp(args: string[]): number | undefined {
  let parsed;
  try {
    parsed = getopt(args, CONVERT_OPTIONS);
  } catch (error) {
    if (error instanceof UsageError) return undefined;
    throw error;
  }
  if (!wantsOptionsHelp(allValues(parsed, 'o'))) return undefined;
  writeOut(createOptionsHelp(lastValue(parsed, 'O') ?? 'raw', parsed.operands.length >= 2));
  return 0;
}
