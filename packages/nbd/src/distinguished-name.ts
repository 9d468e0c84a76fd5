import { OBJECT_IDENTIFIER, SEQUENCE, SET, certificateFields, decodeOid, derElement, type DerElement } from './der.js';

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

/**
 * The subject of an X.509 certificate as one string, in the form qemu's `authz-simple` identities are written and
 * qemu-nbd prints in its "authz check for ... is denied" line (GnuTLS's): the RDNs in the order the certificate
 * holds them (not RFC 4514's reversed order), `,` between RDNs, `+` inside a multi-valued one, LDAP names for the
 * attribute types above and `OID=#hex` for the others, values escaped as RFC 4514 section 2.4 says. Checked
 * against qemu-nbd's output for odd names (fixtures/certificates).
 *
 * `certificate`: DER bytes, as node's X509Certificate.raw.
 */
export function subjectDistinguishedName(certificate: Uint8Array): string {
  return distinguishedName(certificate, certificateFields(certificate).subject);
}

function distinguishedName(bytes: Uint8Array, name: DerElement): string {
  const rdns: string[] = [];
  for (let at = name.body; at < name.end; ) {
    const rdn = derElement(bytes, at, name.end, SET);
    const attributes: string[] = [];
    for (let inner = rdn.body; inner < rdn.end; ) {
      const pair = derElement(bytes, inner, rdn.end, SEQUENCE);
      const type = derElement(bytes, pair.body, pair.end, OBJECT_IDENTIFIER);
      const value = derElement(bytes, type.end, pair.end);
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
