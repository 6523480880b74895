/**
 * copy() with an FTPS server (explicit TLS, required before login): AUTH TLS with the entry's
 * certificate trusted, or the presented one when its key matches the entry's pin.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { createTlsIdentity } from '../../src/backends/certificate.js';
import { copy } from '../../src/copy/copy.js';
import { FileServer } from '../../src/file-server.js';
import { Testbed } from '../../src/testbed/testbed.js';
import type { TransferEvent } from '../../src/transfer.js';
import { tmpDir } from '../helpers/tmp.js';

it('copies both ways with an FTPS server that requires TLS, trusting its certificate or its pinned key only', async () => {
  await using dir = await tmpDir();
  const root = path.join(dir.path, 'root');
  await mkdir(root);
  await writeFile(path.join(root, 'cfg.txt'), 'hostname R1\n');
  const testbed = new Testbed();
  await using server = await FileServer.start({
    protocol: 'ftp',
    name: 'secure',
    testbed,
    root,
    address: '127.0.0.1',
    ftp: { tls: true },
  });
  const events: TransferEvent[] = [];
  server.on('transfer', (e) => events.push(e));
  const local = path.join(dir.path, 'got.txt');
  await copy(testbed, 'ftp://secure/cfg.txt', local);
  expect(await readFile(local, 'utf8')).toBe('hostname R1\n');
  await copy(testbed, local, 'ftp://secure/up/cfg.txt');
  expect(await readFile(path.join(root, 'up', 'cfg.txt'), 'utf8')).toBe('hostname R1\n');

  // Only the pin, as the serve banner's entry has it: the presented certificate is checked first.
  const { certificate: _pem, ...pinOnly } = testbed.servers.get('secure')!;
  const pinned = new Testbed();
  pinned.servers.set('secure', pinOnly);
  await copy(pinned, 'ftp://secure/cfg.txt', path.join(dir.path, 'pinned.txt'));
  expect(await readFile(path.join(dir.path, 'pinned.txt'), 'utf8')).toBe('hostname R1\n');

  // Another key pinned, or another certificate: refused before the password is sent.
  const other = await createTlsIdentity(['127.0.0.1']);
  pinned.servers.set('secure', { ...pinOnly, publicKeyPin: other.publicKeyPin });
  await expect(copy(pinned, 'ftp://secure/cfg.txt', path.join(dir.path, 'no.txt'))).rejects.toMatchObject({
    code: 'ERR_TRANSFER_FAILED',
    message: expect.stringContaining(`the server's key does not match the pin ${other.publicKeyPin}`),
  });
  pinned.servers.set('secure', { ...pinOnly, certificate: other.cert });
  await expect(copy(pinned, 'ftp://secure/cfg.txt', path.join(dir.path, 'no.txt'))).rejects.toMatchObject({
    code: 'ERR_TRANSFER_FAILED',
    message: expect.stringContaining('self-signed certificate'),
  });
  expect(events.map((e) => [e.direction, e.path, e.ok])).toEqual([
    ['download', 'cfg.txt', true],
    ['upload', 'up/cfg.txt', true],
    ['download', 'cfg.txt', true],
  ]);
});
