/**
 * What identifies one version of a file on the server (RFC 9110, section 8.8): its ETag, else its Last-Modified.
 * It is taken from the answer that opened the file; every later answer must carry the same, so an image replaced
 * on the server while it is open is an error instead of a mix of old metadata and new data.
 */
export interface Validator {
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
}

export function validatorOf(headers: Headers): Validator {
  return { etag: headers.get('etag') ?? undefined, lastModified: headers.get('last-modified') ?? undefined };
}

/**
 * The If-Range value that makes the server send the range only from the same version (and otherwise the whole new
 * file with 200, which we abort). If-Range compares ETags strongly, so a weak ETag (`W/"..."`) would never match
 * and every request would come back 200: then the date is used, or nothing (the headers are still compared).
 */
export function ifRangeValue(validator: Validator): string | undefined {
  if (validator.etag !== undefined && !validator.etag.startsWith('W/')) return validator.etag;
  return validator.lastModified;
}

/**
 * How an answer's validator differs from the one the file was opened with, in words for the error; undefined when
 * it is the same version. The ETag decides when the open had one (dates have one-second resolution); a validator
 * that the open had and an answer lacks counts as a change, since nothing then says the bytes are the same.
 */
export function validatorChange(opened: Validator, now: Validator): string | undefined {
  if (opened.etag !== undefined) {
    return now.etag === opened.etag ? undefined : `its ETag was ${quote(opened.etag)}, now ${quote(now.etag)}`;
  }
  if (opened.lastModified !== undefined) {
    return now.lastModified === opened.lastModified
      ? undefined
      : `its Last-Modified was ${quote(opened.lastModified)}, now ${quote(now.lastModified)}`;
  }
  return undefined;
}

/** A header value fit for a one-line message: no control characters, not too long (the server chose it). */
function quote(value: string | undefined): string {
  if (value === undefined) return 'missing';
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}
