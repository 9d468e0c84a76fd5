import { BIT_STRING, BOOLEAN, OBJECT_IDENTIFIER, OCTET_STRING, certificateFields, decodeOid, derChildren, derElement } from './der.js';

const KEY_USAGE = '2.5.29.15';
/** RFC 5280 4.2.1.3: KeyUsage bit 6; bit 0 is the top bit of the first byte after the unused-bits count. */
const CRL_SIGN_BIT = 6;

/**
 * Whether a CA certificate may sign certificate revocation lists: yes without a keyUsage extension (nothing is
 * restricted), else its cRLSign bit. It matters because OpenSSL will not use a CRL signed by a CA whose key usage
 * lacks cRLSign, and then refuses every client ("key usage does not include CRL signing"), where GnuTLS, and so
 * qemu-nbd, uses the CRL anyway; `certtool`'s CA template only sets the bit with `crl_signing_key`.
 */
export function mayIssueCrls(certificate: Uint8Array): boolean {
  const { extensions } = certificateFields(certificate);
  if (extensions === undefined) return true;
  for (const extension of derChildren(certificate, extensions)) {
    // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    const id = derElement(certificate, extension.body, extension.end, OBJECT_IDENTIFIER);
    if (decodeOid(certificate.subarray(id.body, id.end)) !== KEY_USAGE) continue;
    let at = id.end;
    if (certificate[at] === BOOLEAN) at = derElement(certificate, at, extension.end, BOOLEAN).end;
    const value = derElement(certificate, at, extension.end, OCTET_STRING);
    const bits = derElement(certificate, value.body, value.end, BIT_STRING);
    const index = bits.body + 1 + (CRL_SIGN_BIT >> 3);
    return index < bits.end && (certificate[index]! & (0x80 >> (CRL_SIGN_BIT & 7))) !== 0;
  }
  return true;
}

