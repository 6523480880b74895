/**
 * The certificate of FTPS and HTTPS: a self-signed X.509 certificate made at start for the
 * address devices use (its subjectAltName), with a fresh key that dies with the server, or the
 * user's own. Node can make keys and sign but not build certificates, so the DER is written
 * here: a small fixed structure that `crypto.X509Certificate`, OpenSSL and GnuTLS parse (the
 * tests check all three).
 * @internal
 * @module
 */
import { createHash, generateKeyPair, randomBytes, sign, X509Certificate } from 'node:crypto';
import net from 'node:net';
import { promisify } from 'node:util';
import { publicKeyPin } from '../net/key-pin.js';

const generate = promisify(generateKeyPair);

/** Key algorithm of a generated certificate. */
export type CertificateKeyType = 'ecdsa-p256' | 'rsa-2048';

/**
 * The `tls` option of FTPS (`ftp.tls`) and HTTPS (`http.tls`): `true` or `{ keyType }` generates
 * a key and a self-signed certificate for the advertised address at start (ECDSA P-256 unless
 * `keyType: 'rsa-2048'`); `{ key, cert }` uses your own PEM pair.
 */
export type TlsOption =
  | boolean
  | {
      /** Key algorithm of the generated certificate: `ecdsa-p256` (default) or `rsa-2048`. */
      keyType?: CertificateKeyType;
    }
  | {
      /** Your PEM private key, matching `cert`. */
      key: string | Buffer;
      /** Your PEM certificate; its fingerprint goes in the info and the testbed entry. */
      cert: string | Buffer;
    };

/** Checks a {@link TlsOption}; `fail` throws with the option's name in front. @internal */
export function checkTlsOption(value: unknown, fail: (message: string) => never): void {
  if (typeof value === 'boolean') return;
  if (typeof value !== 'object' || value === null) fail('tls must be a boolean or an object');
  const o = value as Record<string, unknown>;
  const given = 'cert' in o || 'key' in o;
  if (given && !('cert' in o && 'key' in o)) fail('tls needs both key and cert');
  if ('keyType' in o && !['ecdsa-p256', 'rsa-2048'].includes(String(o.keyType))) {
    fail("tls.keyType must be 'ecdsa-p256' or 'rsa-2048'");
  }
}

/**
 * The identity a TLS server presents: the user's pair, or one made for the address devices use
 * (and the bind address, when it is a literal). @internal
 */
export async function serverIdentity(
  option: Exclude<TlsOption, false>,
  addresses: { advertised: string; bind: string },
): Promise<TlsIdentity> {
  if (typeof option === 'object' && 'cert' in option) {
    const key = option.key.toString();
    const cert = option.cert.toString();
    return { key, cert, ...describeCertificate(cert) };
  }
  const keyType = typeof option === 'object' ? option.keyType : undefined;
  const names = [addresses.advertised, ...(net.isIP(addresses.bind) ? [addresses.bind] : [])];
  return createTlsIdentity(names, keyType ? { keyType } : {});
}

/** What the info and the testbed entry say about a server's certificate. @internal */
export function certificateFacts(identity: TlsIdentity) {
  return {
    certificate: identity.cert,
    certificateFingerprint256: identity.fingerprint256,
    publicKeyPin: identity.publicKeyPin,
  };
}

/** A certificate and its key, PEM encoded, with the fingerprints devices pin. */
export interface TlsIdentity {
  readonly key: string;
  readonly cert: string;
  /** SHA-256 of the certificate, colon-separated hex as `openssl x509 -fingerprint -sha256` shows it. */
  readonly fingerprint256: string;
  /** SHA-256 of the public key in curl's `--pinnedpubkey` form (`sha256//<base64>`). */
  readonly publicKeyPin: string;
}

// --- minimal DER writer -------------------------------------------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};
const sequence = (...items: Buffer[]) => tlv(0x30, ...items);
const set = (...items: Buffer[]) => tlv(0x31, ...items);
const explicit = (n: number, item: Buffer) => tlv(0xa0 + n, item);
const nullValue = () => Buffer.from([0x05, 0x00]);
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer) => tlv(0x03, Buffer.from([0]), b);
const boolean = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));

function integer(b: Buffer): Buffer {
  let start = 0;
  while (start < b.length - 1 && b[start] === 0) start++;
  const trimmed = b.subarray(start);
  return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const out = [a * 40 + b];
  for (const value of rest) {
    const chunk = [value & 0x7f];
    for (let v = value >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(date: Date): Buffer {
  // UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5).
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return date.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`))
    : tlv(0x18, Buffer.from(`${iso}Z`));
}

function ipBytes(address: string): Buffer {
  const bare = address.split('%')[0]!;
  if (net.isIPv4(bare)) return Buffer.from(bare.split('.').map(Number));
  const [head = '', tail = ''] = bare.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  let h = groups(head);
  let t = groups(tail);
  const last = (t.length > 0 ? t : h).at(-1);
  if (last?.includes('.')) {
    // IPv4-mapped tail such as ::ffff:1.2.3.4
    const v4 = last.split('.').map(Number);
    const extra = [((v4[0]! << 8) | v4[1]!).toString(16), ((v4[2]! << 8) | v4[3]!).toString(16)];
    if (t.length > 0) t = [...t.slice(0, -1), ...extra];
    else h = [...h.slice(0, -1), ...extra];
  }
  const full = bare.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return Buffer.from(full.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

// --- certificate ---------------------------------------------------------------------------------

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  subjectKeyIdentifier: '2.5.29.14',
};

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octets(value));
}

/**
 * Generates a key and a self-signed certificate valid for `names` (IP addresses become iPAddress
 * entries, anything else dNSName), from one day ago for `days` days.
 */
export async function createTlsIdentity(
  names: readonly string[],
  options: { keyType?: CertificateKeyType; days?: number } = {},
): Promise<TlsIdentity> {
  const rsa = options.keyType === 'rsa-2048';
  const { publicKey, privateKey } = rsa
    ? await generate('rsa', { modulusLength: 2048 })
    : await generate('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const algorithm = rsa ? sequence(oid(OID.sha256WithRsa), nullValue()) : sequence(oid(OID.ecdsaWithSha256));
  const name = sequence(
    set(sequence(oid(OID.organization), utf8('testbed-fileserver'))),
    set(sequence(oid(OID.commonName), utf8(names[0] ?? 'testbed-fileserver'))),
  );
  const now = Date.now();
  const altNames = [...new Set(names)].map((n) =>
    net.isIP(n.split('%')[0]!) ? tlv(0x87, ipBytes(n)) : tlv(0x82, Buffer.from(n, 'ascii')),
  );
  const keyUsage = rsa ? Buffer.from([0x05, 0xa0]) : Buffer.from([0x07, 0x80]); // digitalSignature(+keyEncipherment)
  const tbs = sequence(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(Buffer.concat([Buffer.from([0x01]), randomBytes(15)])),
    algorithm,
    name,
    sequence(time(new Date(now - 86_400_000)), time(new Date(now + (options.days ?? 365) * 86_400_000))),
    name,
    spki,
    explicit(
      3,
      sequence(
        extension(OID.basicConstraints, true, sequence()),
        extension(OID.keyUsage, true, tlv(0x03, keyUsage)),
        extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
        extension(OID.subjectKeyIdentifier, false, octets(createHash('sha1').update(spki).digest())),
        extension(OID.subjectAltName, false, sequence(...altNames)),
      ),
    ),
  );
  const signature = sign('sha256', tbs, rsa ? privateKey : { key: privateKey, dsaEncoding: 'der' });
  const der = sequence(tbs, algorithm, bits(signature));
  const cert = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
  return {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    cert,
    fingerprint256: new X509Certificate(cert).fingerprint256,
    publicKeyPin: publicKeyPin(spki),
  };
}

/** Fingerprint and pin of a certificate the user supplied. */
export function describeCertificate(
  cert: string | Buffer,
): Pick<TlsIdentity, 'fingerprint256' | 'publicKeyPin'> {
  const x509 = new X509Certificate(cert);
  return { fingerprint256: x509.fingerprint256, publicKeyPin: publicKeyPin(x509.publicKey) };
}
