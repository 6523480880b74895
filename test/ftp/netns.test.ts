/**
 * A device in a network namespace reaches the FTP server through the address FileServer resolved
 * for its subnet: passive replies name that address, active connections go back to the device.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FileServer } from '../../src/file-server.js';
import type { TransferEvent } from '../../src/transfer.js';
import { describeWith } from '../helpers/env.js';
import { makeTree } from '../helpers/ftp.js';
import { createTestHost, type TestHost } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describeWith({ tools: ['curl', 'ip'], root: true }, 'FTP from a network-namespace device', () => {
  let host: TestHost;
  let tmp: Awaited<ReturnType<typeof tmpDir>>;
  let server: FileServer;
  let root: string;
  const events: TransferEvent[] = [];
  const payload = Buffer.from(Array.from({ length: 1_500_000 }, (_, i) => (i * 131) & 255));

  beforeAll(async () => {
    host = await createTestHost();
    tmp = await tmpDir('tbfs-ftp-ns-');
    root = await makeTree(tmp.path);
    await writeFile(path.join(tmp.path, 'device.bin'), payload);
    server = await FileServer.start({ protocol: 'ftp', root, subnet: host.subnet });
    server.on('transfer', (e) => events.push(e));
  });
  afterAll(async () => {
    await server?.stop();
    await tmp?.[Symbol.asyncDispose]();
    await host?.[Symbol.asyncDispose]();
  });

  it('resolves the address on the device link', () => {
    expect(server.info.address).toBe(host.hostAddress);
    expect(server.url).toBe(`ftp://${host.hostAddress}:${server.port}/`);
  });

  it.each([
    ['passive', []],
    ['active', ['--ftp-port', '-']],
  ])('curl on the device uploads and downloads byte-exact (%s)', async (mode, flags) => {
    const { username, password } = server.info;
    const url = `${server.url}from-device-${mode}.bin`;
    const auth = ['--silent', '--show-error', '--user', `${username}:${password}`, ...flags];
    const up = await host.exec('curl', [...auth, '--upload-file', path.join(tmp.path, 'device.bin'), url]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(sha(await readFile(path.join(root, `from-device-${mode}.bin`)))).toBe(sha(payload));
    const out = path.join(tmp.path, `back-${mode}.bin`);
    const down = await host.exec('curl', [...auth, '--output', out, url]);
    expect(down.code).toBe(0);
    expect(sha(await readFile(out))).toBe(sha(payload));
    const mine = events.filter((e) => e.path === `from-device-${mode}.bin`);
    expect(mine.map((e) => [e.direction, e.ok, e.bytes, e.peer.address])).toEqual([
      ['upload', true, payload.length, host.deviceAddress],
      ['download', true, payload.length, host.deviceAddress],
    ]);
  });
});
