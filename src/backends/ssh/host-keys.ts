/**
 * SSH host keys: fresh Ed25519 and RSA keys per server (RSA because many network devices know
 * nothing else), or the user's own, described the way OpenSSH shows them so that a device or a
 * test can pin them: `SHA256:<base64>` fingerprints and `type base64` public-key lines ready for
 * known_hosts.
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';
import ssh2, { type ParsedKey } from 'ssh2';
import { FileServerError } from '../../errors.js';

const { utils } = ssh2;

/** A host key and how clients see it. */
export interface HostKey {
  /** The private key as ssh2 takes it. */
  readonly privateKey: string | Buffer;
  /** Key type as in known_hosts, e.g. `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`. */
  readonly type: string;
  /** `type base64-blob`, the public half as one known_hosts field pair. */
  readonly publicKey: string;
  /** `SHA256:<unpadded base64>`, as `ssh-keygen -lf` and OpenSSH prompts print it. */
  readonly fingerprint: string;
}

/** Describes a private host key (PEM or OpenSSH format); throws ERR_INVALID_OPTIONS if unreadable. */
export function describeHostKey(privateKey: string | Buffer, passphrase?: string): HostKey {
  const parsed = utils.parseKey(privateKey, passphrase) as ParsedKey | ParsedKey[] | Error;
  const key = Array.isArray(parsed) ? parsed[0] : parsed instanceof Error ? undefined : parsed;
  if (!key?.isPrivateKey()) {
    const reason = parsed instanceof Error ? parsed.message : 'not a private key';
    throw new FileServerError('ERR_INVALID_OPTIONS', `ssh.hostKeys: cannot read a host key (${reason})`, {
      ...(parsed instanceof Error ? { cause: parsed } : {}),
    });
  }
  const blob = key.getPublicSSH();
  return {
    privateKey,
    type: key.type,
    publicKey: `${key.type} ${blob.toString('base64')}`,
    fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
  };
}

function generateOnce(type: 'ed25519' | 'rsa', bits: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, keys: { private: string }) =>
      error ? reject(error) : resolve(keys.private);
    if (type === 'rsa') utils.generateKeyPair('rsa', { bits }, done);
    else utils.generateKeyPair('ed25519', {}, done);
  });
}

/**
 * One host key of `type`. ssh2 1.17's key generator (ssh2#1390) drops a leading zero byte of an
 * Ed25519 public key, so one Ed25519 key in 256 comes out malformed (its own parser refuses it):
 * such a key is simply generated again.
 */
export async function generateHostKey(type: 'ed25519' | 'rsa', bits = 2048): Promise<HostKey> {
  for (let attempt = 1; ; attempt++) {
    const privateKey = await generateOnce(type, bits);
    if (!(utils.parseKey(privateKey) instanceof Error) || attempt === 8) return describeHostKey(privateKey);
  }
}

/** Generates an Ed25519 and an RSA host key (off the event loop). */
export function generateHostKeys(rsaBits: number): Promise<HostKey[]> {
  return Promise.all([generateHostKey('ed25519'), generateHostKey('rsa', rsaBits)]);
}
