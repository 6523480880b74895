/**
 * The examples of docs/ftp.md. Each `#region` is copied verbatim into the guide
 * (test/docs.test.ts checks).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Client } from 'basic-ftp';
import { FileServer } from 'testbed-fileserver';
import { expect, it } from 'vitest';

it('ftp guide: serve and receive over FTP', async () => {
  // #region ftp
  await using server = await FileServer.start({
    protocol: 'ftp',
    address: '127.0.0.1', // in a lab: subnet, interface or reachableFrom
    ftp: { passivePortRange: [50000, 50999] }, // what the firewall lets through
  });
  const { address, port, username, password, root, passivePorts } = server.info;
  console.log(server.url, passivePorts); // ftp://127.0.0.1:40123/ [ 50544, 50575 ]

  // A device would now run: copy running-config ftp://<user>:<password>@127.0.0.1:40123/R1/R1.cfg
  const client = new Client();
  await client.access({ host: address, port, user: username!, password: password! }); // FTP always has both
  await client.uploadFrom(Readable.from(['hostname R1\n']), 'R1/R1.cfg'); // R1/ is created
  client.close();
  console.log(await readFile(path.join(root, 'R1', 'R1.cfg'), 'utf8')); // hostname R1
  // #endregion ftp
  const [min, max] = passivePorts as [number, number];
  expect(min).toBeGreaterThanOrEqual(50000);
  expect(max).toBeLessThanOrEqual(50999);
  expect(await readFile(path.join(root, 'R1', 'R1.cfg'), 'utf8')).toBe('hostname R1\n');
});

it('ftp guide: explicit FTPS with the certificate pinned', async () => {
  // #region ftps
  await using server = await FileServer.start({ protocol: 'ftp', address: '127.0.0.1', ftp: { tls: true } });
  const { address, port, username, password, certificate, certificateFingerprint256, publicKeyPin } =
    server.info;
  console.log(certificateFingerprint256); // 3A:91:...:C4 (SHA-256 of the certificate)
  console.log(publicKeyPin); // sha256//q2Jv...= (curl --pinnedpubkey)

  // The certificate is self-signed for the advertised address: trust exactly it.
  const client = new Client();
  await client.access({
    host: address,
    port,
    user: username!,
    password: password!,
    secure: true, // AUTH TLS; the server refuses to log in without it
    secureOptions: { ca: [String(certificate)] },
  });
  await client.uploadFrom(Readable.from(['secret config\n']), 'R1.cfg');
  client.close();
  // #endregion ftps
  expect(certificateFingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  expect(publicKeyPin).toMatch(/^sha256\/\//);
  expect(await readFile(path.join(server.info.root, 'R1.cfg'), 'utf8')).toBe('secret config\n');
});
