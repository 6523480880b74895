/**
 * TFTP over a real link (a veth pair to a network namespace, MTU 1500): windows leave as
 * segmented sends where a segment fits the MTU and one datagram per send where the kernel refuses
 * (larger blocks are IP fragments), and atftp on the device gets every byte either way.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TftpServer, type TftpTransferStats } from '../../src/tftp/index.js';
import { nativeUdp } from '../../src/tftp/native.js';
import { UdpSocket } from '../../src/tftp/transport.js';
import { describeWith, inCI } from '../helpers/env.js';
import { createTestHost, type TestHost } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describeWith({ tools: ['atftp', 'ip'], root: true }, 'TFTP windows over a veth link (MTU 1500)', () => {
  let host: TestHost;
  let tmp: Awaited<ReturnType<typeof tmpDir>>;
  let server: TftpServer;
  let port: number;
  const transfers: TftpTransferStats[] = [];
  const content = randomBytes(3_000_017);

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
      const options = [
        '--option',
        `blksize ${blksize}`,
        ...(windowsize > 1 ? ['--option', `windowsize ${windowsize}`] : []),
      ];
      const local = path.join(tmp.path, `got-${blksize}.bin`);
      const got = await host.exec('atftp', [
        ...options,
        '-g',
        '-r',
        'image.bin',
        '-l',
        local,
        host.hostAddress,
        String(port),
      ]);
      expect(got.code, got.stderr).toBe(0);
      expect(sha(await readFile(local))).toBe(sha(content));
      const remote = `up-${blksize}.bin`;
      const put = await host.exec('atftp', [
        ...options,
        '-p',
        '-l',
        local,
        '-r',
        remote,
        host.hostAddress,
        String(port),
      ]);
      expect(put.code, put.stderr).toBe(0);
      expect(sha(await readFile(path.join(tmp.path, remote)))).toBe(sha(content));
      const download = transfers.find((t) => t.direction === 'read' && t.blksize === blksize);
      expect(download).toMatchObject({ outcome: 'ok', windowsize, bytes: content.length });
    },
  );
});
