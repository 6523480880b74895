/**
 * Which certificate a TLS client (https, FTPS) trusts for a testbed entry: the entry's own
 * `certificate`, or, when it carries only a `publicKeyPin` (a `serve` banner's entry leaves the
 * long PEM out), the certificate the server presents in a first handshake if its key matches the
 * pin. The connection that carries credentials then trusts exactly that certificate, and still
 * checks that it names the address. Neither: the system's certificate authorities decide.
 * @internal
 * @module
 */
import type { X509Certificate } from 'node:crypto';
import { publicKeyPin } from '../../net/key-pin.js';
import type { ServerEntry } from '../../testbed/testbed.js';

/** @internal */
export async function certificateToTrust(
  entry: ServerEntry,
  presented: () => Promise<X509Certificate | undefined>,
  fail: (why: string) => Error,
): Promise<string | undefined> {
  if (typeof entry.certificate === 'string') return entry.certificate;
  const pin = entry.publicKeyPin;
  if (typeof pin !== 'string') return undefined;
  const certificate = await presented();
  if (!certificate || publicKeyPin(certificate.publicKey) !== pin) {
    throw fail(`the server's key does not match the pin ${pin}`);
  }
  return certificate.toString();
}
