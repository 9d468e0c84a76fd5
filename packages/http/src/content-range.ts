/**
 * A Content-Range header (RFC 9110, section 14.4) as the answer to one `Range: bytes=a-b`: `bytes a-b/total` on a
 * 206, `bytes * /total` (no space) on a 416. The total is what tells us the file's size without a HEAD.
 */
export interface ContentRange {
  /** First and last byte sent (inclusive), or undefined for the unsatisfied form `bytes * /total`. */
  readonly first: number | undefined;
  readonly last: number | undefined;
  /** The whole file's length, or undefined when the server writes `*` (it does not know). */
  readonly total: number | undefined;
}

const SATISFIED = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i;
const UNSATISFIED = /^bytes\s+\*\/(\d+)$/i;

/** Parses the header, or returns undefined for anything malformed (offsets past 2^53 included). */
export function parseContentRange(header: string | null): ContentRange | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  const satisfied = SATISFIED.exec(text);
  if (satisfied !== null) {
    const first = integer(satisfied[1]!);
    const last = integer(satisfied[2]!);
    const total = satisfied[3] === '*' ? undefined : integer(satisfied[3]!);
    if (first === undefined || last === undefined || last < first) return undefined;
    if (satisfied[3] !== '*' && (total === undefined || last >= total)) return undefined;
    return { first, last, total };
  }
  const unsatisfied = UNSATISFIED.exec(text);
  if (unsatisfied !== null) {
    const total = integer(unsatisfied[1]!);
    return total === undefined ? undefined : { first: undefined, last: undefined, total };
  }
  return undefined;
}

/** The Range header value for bytes `start` up to (not including) `end`. */
export function rangeHeader(start: number, end: number): string {
  return `bytes=${start}-${end - 1}`;
}

function integer(digits: string): number | undefined {
  const value = Number(digits);
  return Number.isSafeInteger(value) ? value : undefined;
}
