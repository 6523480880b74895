/**
 * TFTP over a real link (a veth pair to a network namespace, MTU 1500): windows leave as
 * segmented sends where a segment fits the MTU and one datagram per send where the kernel refuses
 * (larger blocks are IP fragments), and atftp on the device gets every byte either way.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TftpServer, type TftpTransferStats } from '../../src/tftp/index.js';
import { nativeUdp } from '../../src/tftp/native.js';
import { UdpSocket } from '../../src/tftp/transport.js';
import { describeWith, inCI } from '../helpers/env.js';
import { createTestHost, type TestHost } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const run = promisify(execFile);

/** The interface's IPv6 link-local address once duplicate address detection is over (at most 5 s). */
async function linkLocal(show: () => Promise<string>): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const line = (await show()).split('\n').find((l) => l.includes('fe80::'));
    if (line && !line.includes('tentative')) return /fe80::[0-9a-f:]+/.exec(line)![0];
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('no usable IPv6 link-local address within 5 s');
}

describeWith({ tools: ['atftp', 'ip'], root: true }, 'TFTP windows over a veth link (MTU 1500)', () => {
  let host: TestHost;
  let tmp: Awaited<ReturnType<typeof tmpDir>>;
  let server: TftpServer;
  let port: number;
  const transfers: TftpTransferStats[] = [];
  const content = randomBytes(3_000_017);

  /** atftp on the device: `-g` (download image.bin to `local`) or `-p` (upload `local` as `remote`). */
  async function atftp(
    options: { blksize: number; windowsize: number },
    server: string,
    serverPort: number,
    transfer: string[],
  ) {
    const flags = ['--option', `blksize ${options.blksize}`];
    if (options.windowsize > 1) flags.push('--option', `windowsize ${options.windowsize}`);
    const result = await host.exec('atftp', [...flags, ...transfer, server, String(serverPort)]);
    expect(result.code, result.stderr).toBe(0);
  }

  beforeAll(async () => {
    host = await createTestHost();
    tmp = await tmpDir('tbfs-tftp-ns-');
    await writeFile(path.join(tmp.path, 'image.bin'), content);
    server = new TftpServer({ root: tmp.path, address: host.hostAddress });
    server.on('transfer', (t) => transfers.push(t));
    ({ port } = await server.start());
  });
  afterAll(async () => {
    await server?.stop();
    await tmp?.[Symbol.asyncDispose]();
    await host?.[Symbol.asyncDispose]();
  });

  it.skipIf(!nativeUdp && !inCI)(
    'the kernel takes 1468-byte blocks as one segmented send and refuses 8192',
    async () => {
      const socket = await UdpSocket.bind(host.hostAddress, 0);
      try {
        const fd = socket.descriptorForTest()!;
        const send = (size: number) =>
          nativeUdp!.sendBatch(fd, host.deviceAddress, 9, size, [Buffer.alloc(size * 4)], [size * 4], 0, 1);
        expect(send(1472)).toBe(4 * 1472);
        expect([-constants.errno.EINVAL, -constants.errno.EMSGSIZE]).toContain(send(8196));
      } finally {
        socket.close();
      }
    },
  );

  it.each([
    [1468, 16],
    [8192, 16],
    [512, 1],
  ])(
    'atftp on the device downloads and uploads byte-exact at blksize %i, windowsize %i',
    async (blksize, windowsize) => {
      const local = path.join(tmp.path, `got-${blksize}.bin`);
      await atftp({ blksize, windowsize }, host.hostAddress, port, ['-g', '-r', 'image.bin', '-l', local]);
      expect(sha(await readFile(local))).toBe(sha(content));
      const remote = `up-${blksize}.bin`;
      await atftp({ blksize, windowsize }, host.hostAddress, port, ['-p', '-l', local, '-r', remote]);
      expect(sha(await readFile(path.join(tmp.path, remote)))).toBe(sha(content));
      const download = transfers.find((t) => t.direction === 'read' && t.blksize === blksize);
      expect(download).toMatchObject({ outcome: 'ok', windowsize, bytes: content.length });
    },
  );
  it('serves a scoped IPv6 link-local address, windows segmented (blksize 1428 fits IPv6 in 1500)', async () => {
    const show = ['-6', '-o', 'addr', 'show', 'scope', 'link', 'dev'];
    const hostLinkLocal = await linkLocal(
      async () => (await run('ip', [...show, host.hostInterface])).stdout,
    );
    const deviceLinkLocal = await linkLocal(
      async () => (await host.exec('ip', [...show, host.deviceInterface])).stdout,
    );
    await using v6 = new TftpServer({ root: tmp.path, address: `${hostLinkLocal}%${host.hostInterface}` });
    const v6Transfers: TftpTransferStats[] = [];
    v6.on('transfer', (t) => v6Transfers.push(t));
    const { port: v6Port } = await v6.start();
    if (nativeUdp) {
      // The scope names the link: the kernel takes the segmented send to the device's link and
      // refuses the same address on loopback (ENETUNREACH here), so the scope did reach it.
      const socket = await UdpSocket.bind(`${hostLinkLocal}%${host.hostInterface}`, 0);
      try {
        const fd = socket.descriptorForTest()!;
        const window = [Buffer.alloc(4 * 1432)];
        const to = (scope: string) =>
          nativeUdp!.sendBatch(fd, `${deviceLinkLocal}%${scope}`, 9, 1432, window, [4 * 1432], 0, 1);
        expect(to(host.hostInterface)).toBe(4 * 1432);
        expect(to('lo')).toBeLessThan(0);
      } finally {
        socket.close();
      }
    }
    const local = path.join(tmp.path, 'got-v6.bin');
    const server = `${hostLinkLocal}%${host.deviceInterface}`;
    await atftp({ blksize: 1428, windowsize: 16 }, server, v6Port, ['-g', '-r', 'image.bin', '-l', local]);
    expect(sha(await readFile(local))).toBe(sha(content));
    expect(v6Transfers).toMatchObject([{ outcome: 'ok', blksize: 1428, windowsize: 16 }]);
  });
});
