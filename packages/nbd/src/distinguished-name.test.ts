import { describe, expect, it } from 'vitest';
import { CertificateFormatError } from './der.js';
import { certificateFixtures } from './certificate-fixtures.js';
import { subjectDistinguishedName } from './distinguished-name.js';

describe('subjectDistinguishedName', () => {
  // A certificate of a client has the identity qemu-nbd printed for it in the JSON beside it.
  for (const { file, der, answer } of certificateFixtures()) {
    if (answer.qemuNbdIdentity === undefined) continue;
    it(`names ${file} as qemu-nbd does`, () => {
      expect(subjectDistinguishedName(der)).toBe(answer.qemuNbdIdentity);
    });
  }

  it('throws a typed error for bytes that are not a certificate, cut or not', () => {
    const der = certificateFixtures().find((fixture) => fixture.file === 'plain-subject.pem')!.der;
    for (const bad of [new Uint8Array(0), new Uint8Array([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), der.subarray(0, 200), new Uint8Array([0x04, 0x00])]) {
      expect(() => subjectDistinguishedName(bad)).toThrow(CertificateFormatError);
    }
  });
});
