import type { NbdTlsPolicy } from '@q/nbd';
import { TlsCredentialsError, loadPskCredentials, loadX509Credentials, type NbdTlsCredentials } from '@q/nbd/node';
import { lastValue, type ParsedArgs } from './getopt.js';
import { ExitError, UsageError } from './usage-error.js';

/** `qcow serve`'s TLS flags, for its getopt spec. */
export const TLS_LONG_OPTIONS: Record<string, boolean> = {
  'tls-creds': true,
  'tls-psk': true,
  'tls-verify-peer': true,
  'tls-authz': true,
};

/** What `listenNbd` and `NbdServer` need to require TLS. */
export interface ServeTls {
  credentials: NbdTlsCredentials;
  policy: NbdTlsPolicy;
}

/**
 * Reads the TLS flags and loads the credentials they name, before anything listens: a bad path or file is one
 * line and exit 1, never a server that refuses every client. Undefined without TLS flags.
 *
 * - `--tls-creds DIR`: x509 from qemu's layout (ca-cert.pem, server-cert.pem, server-key.pem, optional ca-crl.pem),
 *   qemu-nbd's `--object tls-creds-x509,dir=DIR,endpoint=server --tls-creds ID`.
 * - `--tls-verify-peer=on|off`: clients must show a certificate from the CA (default on, as qemu's verify-peer).
 * - `--tls-psk FILE|DIR`: pre-shared keys, a psktool file or a directory holding keys.psk (qemu's tls-creds-psk).
 * - `--tls-authz IDENTITY`, repeatable: only these clients are served, as qemu's `authz-simple,identity=...`: a
 *   certificate's distinguished name as qemu-nbd prints it (`C=GB,O=Example,CN=client1`) or a PSK username.
 */
export async function serveTlsFromArgs(parsed: ParsedArgs): Promise<ServeTls | undefined> {
  const dir = lastValue(parsed, 'tls-creds');
  const psk = lastValue(parsed, 'tls-psk');
  const verifyText = lastValue(parsed, 'tls-verify-peer');
  const identities = parsed.options.filter((option) => option.name === 'tls-authz').map((option) => option.value ?? '');
  if (dir !== undefined && psk !== undefined) throw new UsageError('--tls-creds and --tls-psk cannot be combined');
  if (dir === undefined && psk === undefined) {
    if (verifyText !== undefined || identities.length > 0) throw new UsageError('--tls-verify-peer and --tls-authz need --tls-creds or --tls-psk');
    return undefined;
  }
  if (psk !== undefined && verifyText !== undefined) throw new UsageError('--tls-verify-peer applies to --tls-creds only');
  const verifyPeer = verifyText === undefined ? true : parseSwitch(verifyText);
  // Without verification no client shows a certificate, so an identity list would refuse everyone.
  if (!verifyPeer && identities.length > 0) throw new UsageError('--tls-authz needs --tls-verify-peer=on');
  if (identities.some((identity) => identity === '')) throw new UsageError('--tls-authz needs an identity');
  try {
    const credentials = dir !== undefined ? await loadX509Credentials(dir, { verifyPeer }) : await loadPskCredentials(psk!);
    return { credentials, policy: identities.length === 0 ? {} : { allowedIdentities: identities } };
  } catch (error) {
    if (error instanceof TlsCredentialsError) throw new ExitError(`Failed to load TLS credentials: '${error.file}': ${error.message}`, 1);
    throw error;
  }
}

/** qemu's boolean property values. */
function parseSwitch(text: string): boolean {
  if (['on', 'yes', 'true'].includes(text)) return true;
  if (['off', 'no', 'false'].includes(text)) return false;
  throw new UsageError(`Invalid --tls-verify-peer value '${text}' (expected on or off)`);
}
