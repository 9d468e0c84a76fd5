/**
 * The subject of an X.509 certificate as one string, in the form qemu's `authz-simple` identities are written and
 * qemu-nbd prints in its "authz check for ... is denied" line (GnuTLS's): the RDNs in the order the certificate
 * holds them (not RFC 4514's reversed order), `,` between RDNs, `+` inside a multi-valued one, LDAP names for the
 * attribute types below and `OID=#hex` for the others, values escaped as RFC 4514 section 2.4 says. Written from
 * X.690 (DER) and RFC 5280 section 4.1, and checked against qemu-nbd's output for odd names (see the tests).
 */

/** Attribute type names, as qemu-nbd (GnuTLS) prints them; any other type is written as its dotted OID. */
const ATTRIBUTE_NAMES: ReadonlyMap<string, string> = new Map([
  ['2.5.4.3', 'CN'],
  ['2.5.4.4', 'surName'],
  ['2.5.4.5', 'serialNumber'],
  ['2.5.4.6', 'C'],
  ['2.5.4.7', 'L'],
  ['2.5.4.8', 'ST'],
  ['2.5.4.9', 'street'],
  ['2.5.4.10', 'O'],
  ['2.5.4.11', 'OU'],
  ['2.5.4.12', 'title'],
  ['2.5.4.15', 'businessCategory'],
  ['2.5.4.17', 'postalCode'],
  ['2.5.4.41', 'name'],
  ['2.5.4.42', 'givenName'],
  ['2.5.4.43', 'initials'],
  ['2.5.4.44', 'generationQualifier'],
  ['2.5.4.46', 'dnQualifier'],
  ['2.5.4.65', 'pseudonym'],
  ['0.9.2342.19200300.100.1.1', 'UID'],
  ['0.9.2342.19200300.100.1.25', 'DC'],
  ['1.2.840.113549.1.9.1', 'EMAIL'],
]);

const SEQUENCE = 0x30;
const SET = 0x31;
const OBJECT_IDENTIFIER = 0x06;
const CONTEXT_0 = 0xa0;

interface Element {
  tag: number;
  /** Where the element starts (its tag byte), where its contents start, and where it ends. */
  start: number;
  body: number;
  end: number;
}

/** A certificate that is not DER as RFC 5280 lays it out. */
export class CertificateFormatError extends Error {
  override readonly name = 'CertificateFormatError';
  readonly code = 'E_CERTIFICATE_FORMAT';
}

/** The distinguished name of `certificate` (DER bytes, as node's X509Certificate.raw) in qemu's form. */
export function subjectDistinguishedName(certificate: Uint8Array): string {
  const outer = element(certificate, 0, certificate.length, SEQUENCE);
  const tbs = element(certificate, outer.body, outer.end, SEQUENCE);
  // tbsCertificate: [0] version (optional), serialNumber, signature, issuer, validity, subject, ...
  let at = tbs.body;
  if (certificate[at] === CONTEXT_0) at = element(certificate, at, tbs.end).end;
  for (let skip = 0; skip < 4; skip++) at = element(certificate, at, tbs.end).end;
  return distinguishedName(certificate, element(certificate, at, tbs.end, SEQUENCE));
}

function distinguishedName(bytes: Uint8Array, name: Element): string {
  const rdns: string[] = [];
  for (let at = name.body; at < name.end; ) {
    const rdn = element(bytes, at, name.end, SET);
    const attributes: string[] = [];
    for (let inner = rdn.body; inner < rdn.end; ) {
      const pair = element(bytes, inner, rdn.end, SEQUENCE);
      const type = element(bytes, pair.body, pair.end, OBJECT_IDENTIFIER);
      const value = element(bytes, type.end, pair.end);
      const oid = decodeOid(bytes.subarray(type.body, type.end));
      const label = ATTRIBUTE_NAMES.get(oid);
      const text = label === undefined ? undefined : decodeString(value.tag, bytes.subarray(value.body, value.end));
      // RFC 4514 2.4: a type without a name, or a value that is not a string, is written as #hex of its DER.
      attributes.push(label !== undefined && text !== undefined ? `${label}=${escapeValue(text)}` : `${oid}=#${hex(bytes.subarray(value.start, value.end))}`);
      inner = pair.end;
    }
    rdns.push(attributes.join('+'));
    at = rdn.end;
  }
  return rdns.join(',');
}

/** One DER element at `at`, which must fit before `limit` (and have tag `tag` when given). */
function element(bytes: Uint8Array, at: number, limit: number, tag?: number): Element {
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

/** X.690 8.19: the first byte holds the first two arcs, then base-128 digits with the top bit as "more". */
function decodeOid(bytes: Uint8Array): string {
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

/** The character string types a name attribute may use (RFC 5280 DirectoryString, IA5String for e-mail and DC). */
function decodeString(tag: number, body: Uint8Array): string | undefined {
  switch (tag) {
    case 0x0c: // UTF8String
      return new TextDecoder('utf-8', { fatal: false }).decode(body);
    case 0x12: // NumericString
    case 0x13: // PrintableString
    case 0x14: // TeletexString: in practice Latin-1
    case 0x16: // IA5String
    case 0x1a: // VisibleString
      return String.fromCharCode(...body);
    case 0x1e: // BMPString: UTF-16BE
      return new TextDecoder('utf-16be').decode(body);
    case 0x1c: {
      // UniversalString: UTF-32BE
      const points: number[] = [];
      for (let i = 0; i + 4 <= body.length; i += 4) points.push(((body[i]! << 24) | (body[i + 1]! << 16) | (body[i + 2]! << 8) | body[i + 3]!) >>> 0);
      return String.fromCodePoint(...points.filter((p) => p <= 0x10ffff));
    }
    default:
      return undefined;
  }
}

/** RFC 4514 2.4: the special characters get a backslash, as do a leading space or '#' and a trailing space. */
function escapeValue(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const char = value[i]!;
    const code = char.charCodeAt(0);
    if ('"+,;<>\\'.includes(char) || ((char === ' ' || char === '#') && i === 0) || (char === ' ' && i === value.length - 1)) out += `\\${char}`;
    else if (code < 0x20 || code === 0x7f) out += `\\${code.toString(16).padStart(2, '0')}`;
    else out += char;
  }
  return out;
}

function hex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}
