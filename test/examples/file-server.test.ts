/**
 * The examples of README.md, docs/file-server.md, docs/testbed.md, docs/http.md and
 * docs/errors.md. Each `#region` is copied verbatim into the docs (test/docs.test.ts checks).
 */
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import {
  copy,
  FileServer,
  type FileServerInfo,
  isFileServerError,
  startDynamicServers,
  Testbed,
  type TransferEvent,
} from 'testbed-fileserver';
import { expect, it } from 'vitest';
import { tmpDir } from '../helpers/tmp.js';

it('README: serve a folder for the length of a block', async () => {
  await using dir = await tmpDir();
  const root = path.join(dir.path, 'out');
  let seen: FileServerInfo | undefined;
  // #region readme
  const testbed = new Testbed();
  {
    await using server = new FileServer({
      protocol: 'http',
      name: 'artifacts',
      root, // created if missing; a temporary folder when left out
      subnet: '127.0.0.0/8', // in a lab: the subnet your devices are on
      testbed,
    });
    const info = await server.start();
    console.log(`${info.url} user ${info.username}`); // http://127.0.0.1:41234/ user tb5k2m...
    testbed.servers.get('artifacts'); // { protocol, address, port, root, username, password, url }
    // #endregion readme
    seen = info;
    expect(testbed.servers.get('artifacts')).toMatchObject({ address: '127.0.0.1', port: info.port, root });
    // #region readme
  }
  // Here the server is closed, its sockets are released and 'artifacts' is gone from the testbed.
  // #endregion readme
  expect(seen?.address).toBe('127.0.0.1');
  expect(testbed.servers.has('artifacts')).toBe(false);
});

it('file-server guide: start in one call, assert on transfers', async () => {
  // #region one-call
  await using server = await FileServer.start({ protocol: 'http', address: '127.0.0.1' });
  const { url, username, password, root } = server.info;
  await writeFile(path.join(root, 'ios.bin'), 'image bytes');

  // A device (here: fetch) downloads the image; the server reports the transfer.
  const done = server.waitForTransfer((event) => event.path === 'ios.bin');
  const auth = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  await fetch(`${url}ios.bin`, { headers: { authorization: auth } }).then((res) => res.arrayBuffer());
  const event: TransferEvent = await done;
  console.log(event.direction, event.bytes, event.ok, event.peer.address); // download 11 true 127.0.0.1
  // #endregion one-call
  expect(event).toMatchObject({ direction: 'download', bytes: 11, ok: true, protocol: 'http' });
});

it('file-server guide: the ways to choose the address', async () => {
  // The "device" keeps the connection open: a closed socket has no localAddress any more.
  await using device = net.createServer((s) => s.resume()).listen(0, '127.0.0.1');
  await once(device, 'listening');
  const sshSession = net.connect((device.address() as net.AddressInfo).port, '127.0.0.1');
  using _closeSession = { [Symbol.dispose]: () => sshSession.destroy() }; // before the device closes
  await once(sshSession, 'connect');
  const servers = [
    // #region addresses
    new FileServer({ protocol: 'tftp', address: '127.0.0.1' }), // exactly this address
    new FileServer({ protocol: 'tftp', subnet: '127.0.0.0/8' }), // the one host address in this subnet
    new FileServer({ protocol: 'tftp', interface: 'lo' }), // the first address of this interface
    new FileServer({ protocol: 'tftp', reachableFrom: '127.0.0.1' }), // the address routed toward the device
    new FileServer({ protocol: 'tftp', via: sshSession }), // the local end of a live connection to it
    new FileServer({ protocol: 'tftp' }), // TESTBED_FILESERVER_ADDRESS, else the default route's address
    // #endregion addresses
  ];
  for (const server of servers.slice(0, 5)) {
    const info = await server.start();
    expect(info.address).toBe('127.0.0.1');
    expect(info.addressReason).not.toBe('');
    await server.stop();
  }
});

it('file-server guide: NAT and fixed ports', async () => {
  // #region advertise
  await using server = await FileServer.start({
    protocol: 'http',
    address: '127.0.0.1', // what is bound here
    advertise: { address: '198.51.100.7', port: 8080 }, // what devices behind the NAT are told
    port: 'standard', // port 80 if it can be bound, else a free one
  });
  console.log(server.info.url, server.info.bindPort); // http://198.51.100.7:8080/ 80
  // #endregion advertise
  expect(server.info.url).toBe('http://198.51.100.7:8080/');
});

it('errors guide: match on the code', async () => {
  await using busy = net.createServer().listen(0, '127.0.0.1');
  await once(busy, 'listening');
  const port = (busy.address() as net.AddressInfo).port;
  let fallback: FileServer | undefined;
  // #region errors
  const server = new FileServer({ protocol: 'http', address: '127.0.0.1', port });
  try {
    await server.start();
  } catch (error) {
    if (!isFileServerError(error, 'ERR_ADDRESS_IN_USE')) throw error;
    console.log(error.message, error.cause); // ... port 41234: listen EADDRINUSE ... { code: 'EADDRINUSE' }
    fallback = await FileServer.start({ protocol: 'http', address: '127.0.0.1' }); // any free port
  }
  // #endregion errors
  expect(fallback?.port).not.toBe(port);
  await fallback?.stop();
});

it('testbed guide: dynamic servers from a testbed file', async () => {
  await using dir = await tmpDir();
  await writeFile(
    path.join(dir.path, 'testbed.yaml'),
    await readFile(new URL('testbed.yaml', import.meta.url)),
  );
  await mkdir(path.join(dir.path, 'images'));
  const file = path.join(dir.path, 'testbed.yaml');
  process.env.LAB_PASSWORD = 'not-used-here';
  // #region dynamic
  const testbed = await Testbed.load(file);
  {
    await using servers = await startDynamicServers(testbed);
    const images = testbed.servers.get('images')!; // now with address, port, username, password, url
    console.log(images.url, [...servers.servers.keys()]); // tftp://127.0.0.1:40001/ [ 'images', 'uploads' ]
    // #endregion dynamic
    expect(images).toMatchObject({ protocol: 'tftp', address: '127.0.0.1' });
    expect(testbed.servers.get('uploads')).toMatchObject({ protocol: 'http', username: expect.any(String) });
    // #region dynamic
  }
  // Stopped: the entries are back to what the file says.
  // #endregion dynamic
  expect(testbed.servers.get('images')).toMatchObject({ dynamic: true });
  delete process.env.LAB_PASSWORD;
});

it('http guide: upload, download a range, list', async () => {
  // #region http
  await using server = await FileServer.start({ protocol: 'http', address: '127.0.0.1' });
  const { url, username, password } = server.info;
  const headers = { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };

  // PUT (or POST, raw or multipart) lands in a temporary file, renamed when complete.
  await fetch(`${url}configs/R1.cfg`, { method: 'PUT', body: 'hostname R1\n', headers }); // 201
  const range = await fetch(`${url}configs/R1.cfg`, { headers: { ...headers, range: 'bytes=0-7' } });
  console.log(range.status, await range.text()); // 206 hostname
  const listing = await fetch(`${url}configs/?format=json`, { headers });
  console.log(await listing.json()); // { path: '/configs', entries: [ { name: 'R1.cfg', type: 'file', size: 12, ... } ] }
  // #endregion http
  expect(range.status).toBe(206);
  expect(await readFile(path.join(server.info.root, 'configs/R1.cfg'), 'utf8')).toBe('hostname R1\n');
});

it('http guide: https with the certificate made at start', async () => {
  await using dir = await tmpDir();
  const image = path.join(dir.path, 'ios.bin');
  await writeFile(image, 'image');
  // #region https
  const testbed = new Testbed();
  await using server = await FileServer.start({
    protocol: 'https',
    name: 'web',
    testbed,
    address: '127.0.0.1',
  });
  const { url, certificateFingerprint256, publicKeyPin } = server.info;
  console.log(url); // https://127.0.0.1:40443/
  console.log(certificateFingerprint256); // 3A:1F:...:C2, as a device shows it for its trustpoint
  console.log(`curl --insecure --pinnedpubkey ${publicKeyPin} ...`); // trusts exactly this key
  // copy() trusts the certificate the testbed entry publishes, and nothing else.
  await copy(testbed, image, 'https://web/images/ios.bin');
  // #endregion https
  expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
  expect(await readFile(path.join(server.info.root, 'images/ios.bin'), 'utf8')).toBe('image');
});
