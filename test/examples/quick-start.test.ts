/**
 * The examples of docs/quick-start.md. Each `#region` is copied verbatim into the guide
 * (test/docs.test.ts checks).
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  copyToDevice,
  FileServer,
  SshDevice,
  startDynamicServers,
  Testbed,
  type TransferEvent,
} from 'testbed-fileserver';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../helpers/env.js';
import { createTestHost, type TestHost } from '../helpers/netns.js';
import { type Sshd, startSshd } from '../helpers/sshd.js';
import { tmpDir } from '../helpers/tmp.js';

it('quick start: a server for the length of a test', async () => {
  await using dir = await tmpDir();
  const root = dir.path;
  // #region first
  await using server = await FileServer.start({
    protocol: 'http',
    root, // the folder to serve; a fresh temporary one when left out
    address: '127.0.0.1', // in a lab: subnet, interface or reachableFrom (see the FileServer guide)
  });
  const { url, username, password } = server.info; // http://127.0.0.1:41234/, random credentials
  await writeFile(path.join(root, 'config.txt'), 'hostname R1\n');

  // The "device" here is fetch; in a lab it is a router running `copy http://... flash:`.
  const auth = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  const seen = server.waitForTransfer();
  const text = await (await fetch(`${url}config.txt`, { headers: { authorization: auth } })).text();
  const event: TransferEvent = await seen;
  console.log(text, event.direction, event.bytes, event.ok); // hostname R1 download 12 true
  // #endregion first
  expect(text).toBe('hostname R1\n');
  expect(event).toMatchObject({ direction: 'download', bytes: 12, ok: true });
});

describeWith(
  { tools: ['ip', 'sshd', 'ssh-keygen', 'useradd', 'tftp'], root: true },
  'quick start: a testbed, a dynamic server and a device',
  () => {
    let host: TestHost;
    let sshd: Sshd;
    beforeAll(async () => {
      host = await createTestHost();
      sshd = await startSshd({ host });
    });
    afterAll(async () => {
      await sshd?.[Symbol.asyncDispose]();
      await host?.[Symbol.asyncDispose]();
    });

    it('loads lab.yaml, starts images, has web1 fetch an image', async () => {
      await using work = await tmpDir();
      await cp(path.join(import.meta.dirname, 'quick-start'), work.path, { recursive: true });
      await mkdir(path.join(work.path, 'images'));
      await writeFile(path.join(work.path, 'images', 'app.tar.gz'), Buffer.alloc(200_000, 7));
      Object.assign(process.env, {
        WEB1_IP: sshd.address,
        WEB1_USER: sshd.username,
        WEB1_PASSWORD: sshd.password,
      });
      const file = path.join(work.path, 'lab.yaml');
      const destination = `${sshd.home}/`;
      try {
        // #region testbed
        const testbed = await Testbed.load(file); // lab.yaml above
        await using _servers = await startDynamicServers(testbed); // 'images' runs until this block ends
        await using web1 = await SshDevice.fromTestbed(testbed, 'web1').connect();

        const result = await copyToDevice(web1, { server: 'images', file: 'app.tar.gz', destination });
        console.log(result.command); // if tftp -m binary 198.18.0.1 40123 -c get app.tar.gz ~/app.tar.gz.tbfs-part ...; then mv ...
        console.log(result.confirmedBy); // server: our server saw the whole file go out
        // #endregion testbed
        expect(result.confirmedBy).toBe('server');
      } finally {
        for (const key of ['WEB1_IP', 'WEB1_USER', 'WEB1_PASSWORD']) delete process.env[key];
      }
      expect(await readFile(path.join(sshd.home, 'app.tar.gz'))).toHaveLength(200_000);
      await rm(path.join(sshd.home, 'app.tar.gz'), { force: true });
    });
  },
);
