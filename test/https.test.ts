/**
 * HTTPS: the HTTP server behind TLS with a certificate made at start for the advertised address,
 * checked with curl (OpenSSL) against the published certificate and key pin, and with copy().
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { createTlsIdentity } from '../src/backends/certificate.js';
import { copy } from '../src/copy/copy.js';
import { FileServer, type FileServerOptions } from '../src/file-server.js';
import { Testbed } from '../src/testbed/testbed.js';
import type { TransferEvent } from '../src/transfer.js';
import { describeWith, isRoot } from './helpers/env.js';
import { curl } from './helpers/http.js';
import { tmpDir } from './helpers/tmp.js';

async function serve(options: Partial<FileServerOptions> = {}) {
  const dir = await tmpDir();
  const root = path.join(dir.path, 'root');
  await mkdir(root);
  await writeFile(path.join(root, 'hello.txt'), 'hello over tls\n');
  const testbed = new Testbed();
  const server = await FileServer.start({
    protocol: 'https',
    address: '127.0.0.1',
    root,
    name: 'web',
    testbed,
    ...options,
  } as FileServerOptions);
  const events: TransferEvent[] = [];
  server.on('transfer', (e) => events.push(e));
  const caFile = path.join(dir.path, 'ca.pem');
  await writeFile(caFile, server.info.certificate ?? '');
  return {
    dir: dir.path,
    root,
    server,
    testbed,
    events,
    caFile,
    user: `${server.info.username}:${server.info.password}`,
    async [Symbol.asyncDispose]() {
      await server.stop();
      await dir[Symbol.asyncDispose]();
    },
  };
}

describe('HTTPS server', () => {
  it('publishes a certificate for its address, its fingerprint and key pin, in the info and the testbed', async () => {
    await using s = await serve();
    const info = s.server.info;
    expect(info.url).toBe(`https://127.0.0.1:${info.port}/`);
    const cert = new X509Certificate(info.certificate ?? '');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.fingerprint256).toBe(info.certificateFingerprint256);
    expect(info.publicKeyPin).toMatch(/^sha256\/\/[A-Za-z0-9+/]{43}=$/);
    expect(s.testbed.servers.get('web')).toMatchObject({
      protocol: 'https',
      certificate: info.certificate,
      publicKeyPin: info.publicKeyPin,
    });
  });

  it('copy() by server name trusts exactly the published certificate, both ways', async () => {
    await using s = await serve();
    const local = path.join(s.dir, 'got.txt');
    await copy(s.testbed, 'https://web/hello.txt', local);
    expect(await readFile(local, 'utf8')).toBe('hello over tls\n');
    await copy(s.testbed, local, 'https://web/up/again.txt');
    expect(await readFile(path.join(s.root, 'up', 'again.txt'), 'utf8')).toBe('hello over tls\n');
    expect(s.events.map((e) => [e.protocol, e.direction, e.path, e.ok])).toEqual([
      ['https', 'download', 'hello.txt', true],
      ['https', 'upload', 'up/again.txt', true],
    ]);
    // An entry whose certificate is another one is refused before any byte moves.
    const other = await createTlsIdentity(['127.0.0.1']);
    const forged = new Testbed();
    forged.servers.set('web', { ...s.testbed.servers.get('web')!, certificate: other.cert });
    await expect(copy(forged, 'https://web/hello.txt', path.join(s.dir, 'no.txt'))).rejects.toMatchObject({
      code: 'ERR_TRANSFER_FAILED',
      message: expect.stringMatching(
        /^HTTPS download of https:\/\/127\.0\.0\.1:\d+\/hello\.txt failed: self-signed certificate/,
      ),
    });
    expect(s.events).toHaveLength(2);
  });

  it('copy() with an entry that has only the key pin (as the serve banner prints it) checks the key, then trusts that certificate', async () => {
    await using s = await serve();
    const { certificate: _pem, ...pinOnly } = s.testbed.servers.get('web')!;
    const pinned = new Testbed();
    pinned.servers.set('web', pinOnly);
    const local = path.join(s.dir, 'got.txt');
    await copy(pinned, 'https://web/hello.txt', local);
    expect(await readFile(local, 'utf8')).toBe('hello over tls\n');
    const other = await createTlsIdentity(['127.0.0.1']);
    pinned.servers.set('web', { ...pinOnly, publicKeyPin: other.publicKeyPin });
    await expect(copy(pinned, 'https://web/hello.txt', local)).rejects.toMatchObject({
      code: 'ERR_TRANSFER_FAILED',
      message: expect.stringContaining(`the server's key does not match the pin ${other.publicKeyPin}`),
    });
    expect(s.events.map((e) => e.ok)).toEqual([true]);
  });

  it('serves your own key and certificate (RSA), and says so in the info', async () => {
    const own = await createTlsIdentity(['127.0.0.1'], { keyType: 'rsa-2048' });
    await using s = await serve({ http: { tls: { key: own.key, cert: own.cert } } });
    expect(s.server.info.certificate).toBe(own.cert);
    expect(s.server.info.publicKeyPin).toBe(own.publicKeyPin);
    const socket = tls.connect({ host: '127.0.0.1', port: s.server.info.port, ca: own.cert });
    await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    expect(socket.getPeerCertificate().fingerprint256).toBe(own.fingerprint256);
    socket.destroy();
  });

  it("port: 'standard' binds 443", async () => {
    // 127.0.0.78 is this test's alone, so port 443 on it is free unless this test holds it.
    await using server = await FileServer.start({
      protocol: 'https',
      port: 'standard',
      address: '127.0.0.78',
    });
    if (isRoot) expect(server.port).toBe(443);
    else expect(server.port).toBeGreaterThan(1023); // unprivileged: the fallback
  });

  it('refuses tls options that do not fit, naming them', async () => {
    await expect(
      FileServer.start({ protocol: 'http', address: '127.0.0.1', http: { tls: true } }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS', message: "http.tls is for protocol 'https'" });
    await expect(
      FileServer.start({ protocol: 'https', address: '127.0.0.1', http: { tls: { key: 'x' } } as never }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS', message: 'http.tls needs both key and cert' });
    await expect(
      FileServer.start({ protocol: 'https', address: '127.0.0.1', http: { idleTimeout: 5 } as never }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTIONS',
      message: 'http.idleTimeout is not an HTTP option',
    });
  });

  it('shrugs off plain HTTP and a handshake cut short, and keeps serving', async () => {
    await using s = await serve();
    const port = s.server.info.port;
    const plain = net.connect(port, '127.0.0.1');
    plain.end('GET /hello.txt HTTP/1.1\r\nhost: x\r\n\r\n');
    await new Promise((resolve) => plain.once('close', resolve));
    const cut = net.connect(port, '127.0.0.1');
    cut.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x80, 0x01])); // a ClientHello's first bytes
    cut.destroy();
    const local = path.join(s.dir, 'got.txt');
    await copy(s.testbed, 'https://web/hello.txt', local);
    expect(await readFile(local, 'utf8')).toBe('hello over tls\n');
  });

  it('closes a connection whose handshake stalls after headersTimeoutMs', async () => {
    await using s = await serve({ http: { headersTimeoutMs: 300 } });
    const silent = net.connect(s.server.info.port, '127.0.0.1');
    const started = performance.now();
    await new Promise((resolve) => silent.once('close', resolve).once('error', () => {}));
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('stop() closes kept-alive TLS connections and frees the port', async () => {
    await using s = await serve();
    const port = s.server.info.port;
    const socket = tls.connect({ host: '127.0.0.1', port, ca: s.server.info.certificate });
    await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await s.server.stop();
    await closed;
    const probe = net.createServer();
    await new Promise<void>((resolve, reject) =>
      probe.once('error', reject).listen(port, '127.0.0.1', resolve),
    );
    probe.close();
  });
});

describeWith({ tools: ['curl'] }, 'HTTPS with curl', () => {
  it('downloads and uploads with the certificate as CA, or with the key pinned', async () => {
    await using s = await serve();
    const url = `${s.server.url}hello.txt`;
    const viaCa = await curl(['--fail', '--cacert', s.caFile, '-u', s.user, url]);
    expect([viaCa.code, viaCa.stderr, viaCa.stdout.toString()]).toEqual([0, '', 'hello over tls\n']);
    const pinned = await curl(
      [
        '--fail',
        '--insecure',
        '--pinnedpubkey',
        s.server.info.publicKeyPin!,
        '-u',
        s.user,
        '-T',
        '-',
        `${s.server.url}in/config.txt`,
      ],
      { input: Buffer.from('pushed\n') },
    );
    expect([pinned.code, pinned.stderr]).toEqual([0, '']);
    expect(await readFile(path.join(s.root, 'in', 'config.txt'), 'utf8')).toBe('pushed\n');
  });

  it('curl refuses the server without the certificate, and with another key pinned', async () => {
    await using s = await serve();
    const url = `${s.server.url}hello.txt`;
    const untrusted = await curl(['--fail', '-u', s.user, url]);
    expect(untrusted.code).toBe(60); // peer certificate cannot be authenticated
    const other = await createTlsIdentity(['127.0.0.1']);
    const wrongPin = await curl([
      '--fail',
      '--insecure',
      '--pinnedpubkey',
      other.publicKeyPin,
      '-u',
      s.user,
      url,
    ]);
    expect(wrongPin.code).toBe(90); // public key does not match the pin
    expect(s.events).toEqual([]);
  });
});
