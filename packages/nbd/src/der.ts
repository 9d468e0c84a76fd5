/**
 * Just enough DER (X.690) to read fields of an X.509 certificate (RFC 5280 section 4.1) that node's X509Certificate
 * does not expose in the form needed: the raw subject RDNs, the key usage bits. Pure bytes in, no crypto.
 */

/** A certificate that is not DER as RFC 5280 lays it out. */
export class CertificateFormatError extends Error {
  override readonly name = 'CertificateFormatError';
  readonly code = 'E_CERTIFICATE_FORMAT';
}

export const SEQUENCE = 0x30;
export const SET = 0x31;
export const OBJECT_IDENTIFIER = 0x06;
export const BOOLEAN = 0x01;
export const OCTET_STRING = 0x04;
export const BIT_STRING = 0x03;

/** One element: its tag, where it starts (the tag byte), where its contents start, where it ends. */
export interface DerElement {
  tag: number;
  start: number;
  body: number;
  end: number;
}

/** The element at `at`, which must fit before `limit` (and have tag `tag` when given). */
export function derElement(bytes: Uint8Array, at: number, limit: number, tag?: number): DerElement {
  const found = bytes[at];
  if (found === undefined || at + 2 > limit) throw new CertificateFormatError('certificate ends early');
  if (tag !== undefined && found !== tag) throw new CertificateFormatError(`expected DER tag 0x${tag.toString(16)} at ${at}, found 0x${found.toString(16)}`);
  let length = bytes[at + 1]!;
  let body = at + 2;
  if (length >= 0x80) {
    const count = length & 0x7f;
    // Certificates are far below 4 GiB; anything longer (or indefinite, count 0) is not DER we can use.
    if (count === 0 || count > 4 || body + count > limit) throw new CertificateFormatError(`bad DER length at ${at}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[body + i]!;
    body += count;
  }
  if (body + length > limit) throw new CertificateFormatError(`DER element at ${at} runs past its container`);
  return { tag: found, start: at, body, end: body + length };
}

/** The elements inside `container`, in order. */
export function derChildren(bytes: Uint8Array, container: DerElement): DerElement[] {
  const children: DerElement[] = [];
  for (let at = container.body; at < container.end; ) {
    const child = derElement(bytes, at, container.end);
    children.push(child);
    at = child.end;
  }
  return children;
}

/** The named fields of tbsCertificate that callers need. */
export interface CertificateFields {
  subject: DerElement;
  /** The contents of the [3] extensions field, a SEQUENCE of Extension; undefined when absent. */
  extensions: DerElement | undefined;
}

/** tbsCertificate: [0] version (optional), serialNumber, signature, issuer, validity, subject, ..., [3] extensions. */
export function certificateFields(certificate: Uint8Array): CertificateFields {
  const outer = derElement(certificate, 0, certificate.length, SEQUENCE);
  const tbs = derElement(certificate, outer.body, outer.end, SEQUENCE);
  const fields = derChildren(certificate, tbs);
  const first = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[first + 4];
  if (subject === undefined || subject.tag !== SEQUENCE) throw new CertificateFormatError('no subject in the certificate');
  const tagged = fields.find((field) => field.tag === 0xa3);
  const extensions = tagged === undefined ? undefined : derElement(certificate, tagged.body, tagged.end, SEQUENCE);
  return { subject, extensions };
}

/** X.690 8.19: the first byte holds the first two arcs, then base-128 digits with the top bit as "more". */
export function decodeOid(bytes: Uint8Array): string {
  const arcs: number[] = [];
  let value = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) !== 0) continue;
    if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
    else arcs.push(value);
    value = 0;
  }
  return arcs.join('.');
}
