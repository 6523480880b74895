/**
 * The examples of docs/copy-and-devices.md about server names and copies on this host. Each
 * `#region` is copied verbatim into the guide (test/docs.test.ts checks).
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type CopyProgress,
  copy,
  FileServer,
  isFileServerError,
  resolveUrl,
  Testbed,
} from 'testbed-fileserver';
import { beforeEach, expect, it } from 'vitest';
import { tmpDir } from '../helpers/tmp.js';

let work: string;
let image: string;
const content = Buffer.alloc(3 << 20, 'ios-image ');

beforeEach(async (context) => {
  const dir = await tmpDir();
  const cwd = process.cwd();
  context.onTestFinished(async () => {
    process.chdir(cwd);
    await dir[Symbol.asyncDispose]();
  });
  work = dir.path;
  await mkdir(path.join(work, 'build'));
  image = path.join(work, 'build', 'ios.bin');
  await writeFile(image, content);
  process.chdir(work);
});

it('resolveUrl: a server name becomes an address, a port and credentials', () => {
  // #region resolve
  const testbed = new Testbed({
    servers: {
      images: { protocol: 'ftp', address: '198.18.0.1', port: 2121, username: 'lab', password: 'p@ss/1' },
    },
  });
  resolveUrl(testbed, 'ftp://images/ios/17.9.bin').url; // 'ftp://lab:p%40ss%2F1@198.18.0.1:2121/ios/17.9.bin'
  resolveUrl(testbed, 'ftp://images/ios/17.9.bin', { credentials: 'user' }).url; // 'ftp://lab@198.18.0.1:2121/ios/17.9.bin'
  const { host, port, username, password } = resolveUrl(testbed, 'ftp://images/a.bin', {
    credentials: 'separate',
  });

  try {
    resolveUrl(testbed, 'http://images/a.bin');
  } catch (error) {
    if (!isFileServerError(error, 'ERR_PROTOCOL_MISMATCH')) throw error;
    console.log(error.message); // Server "images" serves ftp, not http
  }
  // #endregion resolve
  expect(resolveUrl(testbed, 'ftp://images/ios/17.9.bin').url).toBe(
    'ftp://lab:p%40ss%2F1@198.18.0.1:2121/ios/17.9.bin',
  );
  expect(resolveUrl(testbed, 'ftp://images/ios/17.9.bin', { credentials: 'user' }).url).toBe(
    'ftp://lab@198.18.0.1:2121/ios/17.9.bin',
  );
  expect({ host, port, username, password }).toEqual({
    host: '198.18.0.1',
    port: 2121,
    username: 'lab',
    password: 'p@ss/1',
  });
});

it('copy over tftp', async () => {
  // #region copy-tftp
  const testbed = new Testbed();
  await using images = await FileServer.start({
    protocol: 'tftp',
    name: 'images',
    testbed,
    address: '127.0.0.1',
  });
  await copy(testbed, './build/ios.bin', 'tftp://images/ios.bin'); // our TftpClient: blksize, windowsize, tsize
  await copy(testbed, 'tftp://images/ios.bin', './check/ios.bin', { verify: true });
  // #endregion copy-tftp
  expect((await readFile(path.join(images.info.root, 'ios.bin'))).equals(content)).toBe(true);
  expect((await readFile(path.join(work, 'check', 'ios.bin'))).equals(content)).toBe(true);
});

it('copy over ftp, with progress', async () => {
  // #region copy-ftp
  const testbed = new Testbed();
  await using images = await FileServer.start({
    protocol: 'ftp',
    name: 'images',
    testbed,
    address: '127.0.0.1',
  });
  const progress: CopyProgress[] = [];
  const result = await copy(testbed, './build/ios.bin', 'ftp://images/17.9/ios.bin', {
    onProgress: (p) => progress.push(p), // at most every 100 ms, and once at the end
  });
  console.log(result); // { bytes: 3145728, sha256: '5f1c...', durationMs: 41.2, verified: false, from: ..., to: ... }
  console.log(progress.at(-1)); // { bytes: 3145728, total: 3145728 }
  // #endregion copy-ftp
  expect(progress.at(-1)).toEqual({ bytes: content.length, total: content.length });
  expect((await readFile(path.join(images.info.root, '17.9', 'ios.bin'))).equals(content)).toBe(true);
});

it('copy over http, verified', async () => {
  // #region copy-http
  const testbed = new Testbed();
  await using uploads = await FileServer.start({
    protocol: 'http',
    name: 'uploads',
    testbed,
    address: '127.0.0.1',
  });
  // verify: read the destination back and compare size and SHA-256; or give the expected values.
  await copy(testbed, './build/ios.bin', 'http://uploads/R1/ios.bin', { verify: true });
  const sha256 = (await copy(testbed, 'http://uploads/R1/ios.bin', './back.bin')).sha256;
  await copy(testbed, 'http://uploads/R1/ios.bin', './again.bin', { verify: { sha256, size: 3 << 20 } });
  // #endregion copy-http
  expect((await readFile(path.join(uploads.info.root, 'R1', 'ios.bin'))).equals(content)).toBe(true);
  expect((await readFile(path.join(work, 'again.bin'))).equals(content)).toBe(true);
});

it('copy over scp and sftp', async () => {
  // #region copy-ssh
  const testbed = new Testbed();
  // One embedded SSH server answers both scp (legacy rcp protocol) and sftp.
  await using ssh = await FileServer.start({ protocol: 'sftp', name: 'ssh', testbed, address: '127.0.0.1' });
  await copy(testbed, './build/ios.bin', 'scp://ssh/ios.bin');
  await copy(testbed, 'sftp://ssh/ios.bin', './from-sftp.bin');
  // The host key is checked against the fingerprints the server published in the testbed.
  console.log(testbed.servers.get('ssh')?.hostKeyFingerprints); // { 'ssh-ed25519': 'SHA256:...', 'ssh-rsa': 'SHA256:...' }
  // #endregion copy-ssh
  expect((await readFile(path.join(ssh.info.root, 'ios.bin'))).equals(content)).toBe(true);
  expect((await readFile(path.join(work, 'from-sftp.bin'))).equals(content)).toBe(true);
});

it('copy between two servers, and cancel', async () => {
  const testbed = new Testbed();
  await using images = await FileServer.start({
    protocol: 'ftp',
    name: 'images',
    testbed,
    address: '127.0.0.1',
  });
  await using _web = await FileServer.start({ protocol: 'http', name: 'web', testbed, address: '127.0.0.1' });
  await copy(testbed, './build/ios.bin', 'ftp://images/ios.bin');
  // #region relay-cancel
  // Server to server: the bytes stream through this host, never stored here.
  await copy(testbed, 'ftp://images/ios.bin', 'http://web/mirror/ios.bin');

  // Cancel: nothing is left at the destination, neither a partial file nor a temporary one.
  const controller = new AbortController();
  const copying = copy(testbed, 'http://web/mirror/ios.bin', './partial.bin', {
    signal: controller.signal,
    onProgress: () => controller.abort(), // here: as soon as bytes flow
  });
  await copying.catch((error: Error) => console.log(error.name)); // AbortError
  // #endregion relay-cancel
  expect((await readFile(path.join(images.info.root, 'ios.bin'))).equals(content)).toBe(true);
  await expect(copying).rejects.toMatchObject({ name: 'AbortError' });
  expect(await readdir(work)).not.toContain('partial.bin');
  expect((await readdir(work)).filter((f) => f.includes('tbfs-part'))).toEqual([]);
});
