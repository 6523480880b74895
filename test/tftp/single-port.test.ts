/**
 * Single-port mode: every transfer is served from the listening port and told apart by the
 * peer's address and port (for NAT, port forwarding and firewalls). Raw packets for the rules,
 * clients written by others for interop.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FileServer } from '../../src/file-server.js';
import { OPCODE } from '../../src/tftp/codec.js';
import { TftpClient, TftpServer, type TftpTransferStats } from '../../src/tftp/index.js';
import { expectSameBytes } from '../helpers/bytes.js';
import { describeWith } from '../helpers/env.js';
import { tmpDir } from '../helpers/tmp.js';
import { RawPeer } from './raw-peer.js';

const run = promisify(execFile);
const rrq = (filename: string, options: Record<string, string> = {}) =>
  ({ opcode: OPCODE.RRQ, filename, mode: 'octet', options: Object.entries(options) }) as const;
const ack = (block: number) => ({ opcode: OPCODE.ACK, block }) as const;

async function serve() {
  const dir = await tmpDir();
  const server = new TftpServer({ root: dir.path, singlePort: true, dallyMs: 200 });
  const transfers: TftpTransferStats[] = [];
  server.on('transfer', (t) => transfers.push(t));
  const { port } = await server.start();
  return {
    root: dir.path,
    port,
    server,
    transfers,
    async [Symbol.asyncDispose]() {
      await server.stop();
      await dir[Symbol.asyncDispose]();
    },
  };
}

describe('TFTP single-port mode', () => {
  it('answers from the listening port, keeps two peers of one address apart, and tells a stranger ERROR 5', async () => {
    await using s = await serve();
    const a = randomBytes(1000);
    const b = randomBytes(700);
    await writeFile(path.join(s.root, 'a.bin'), a);
    await writeFile(path.join(s.root, 'b.bin'), b);
    await using one = await RawPeer.open();
    await using two = await RawPeer.open();
    await using stranger = await RawPeer.open();
    one.send(rrq('a.bin'), s.port);
    two.send(rrq('b.bin'), s.port);
    const [a1, b1] = [await one.next(), await two.next()];
    expect([a1.from.port, b1.from.port]).toEqual([s.port, s.port]);
    expect(a1.packet).toMatchObject({ opcode: OPCODE.DATA, block: 1, data: a.subarray(0, 512) });
    expect(b1.packet).toMatchObject({ opcode: OPCODE.DATA, block: 1, data: b.subarray(0, 512) });
    stranger.send(ack(1), s.port); // no transfer of its own
    expect((await stranger.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 5 });
    one.send(Buffer.from([0, 0, 1]), s.port); // garbage from a peer with a transfer: ignored, not refused
    one.send(ack(1), s.port);
    two.send(ack(1), s.port);
    const [a2, b2] = [await one.next(), await two.next()];
    expect(a2).toMatchObject({ from: { port: s.port }, packet: { block: 2, data: a.subarray(512) } });
    expect(b2).toMatchObject({ from: { port: s.port }, packet: { block: 2, data: b.subarray(512) } });
    one.send(ack(2), s.port);
    two.send(ack(2), s.port);
    await expect.poll(() => s.transfers.length).toBe(2);
    expect(s.transfers.map((t) => [t.filename, t.outcome, t.bytes]).sort()).toEqual([
      ['a.bin', 'ok', 1000],
      ['b.bin', 'ok', 700],
    ]);
  });

  it('the UEFI size probe (OACK, ERROR 8, the request again from the same port) starts a fresh transfer', async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'boot.efi'), Buffer.alloc(100, 1));
    await using peer = await RawPeer.open();
    peer.send(rrq('boot.efi', { tsize: '0' }), s.port);
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.OACK, options: [['tsize', '100']] });
    peer.send({ opcode: OPCODE.ERROR, code: 8, message: 'size probe' }, s.port);
    peer.send(rrq('boot.efi'), s.port);
    const data = await peer.next();
    expect(data).toMatchObject({ from: { port: s.port }, packet: { opcode: OPCODE.DATA, block: 1 } });
    peer.send(ack(1), s.port);
    await expect.poll(() => s.transfers.map((t) => t.outcome)).toEqual(['probe', 'ok']);
  });

  it('our client gets and puts through it, windowed', async () => {
    await using s = await serve();
    const content = randomBytes(300_001);
    const client = new TftpClient({ host: '127.0.0.1', port: s.port, blksize: 1468, windowsize: 16 });
    await client.put(content, 'up.bin');
    expectSameBytes(await readFile(path.join(s.root, 'up.bin')), content);
    const back = await client.get('up.bin', path.join(s.root, 'back.bin'));
    expect(back).toMatchObject({ outcome: 'ok', windowsize: 16 });
    expectSameBytes(await readFile(path.join(s.root, 'back.bin')), content);
  });
});

describeWith(
  { tools: ['curl', 'tftp', 'atftp', 'busybox'] },
  'TFTP single-port mode with other clients',
  () => {
    it('curl, tftp-hpa, atftp (windowsize 16) and busybox get and put byte-exact through FileServer', async () => {
      await using server = await FileServer.start({
        protocol: 'tftp',
        address: '127.0.0.1',
        tftp: { singlePort: true },
      });
      const content = randomBytes(2_000_003);
      const root = server.info.root;
      await writeFile(path.join(root, 'image.bin'), content);
      const port = String(server.port);
      const out = (name: string) => path.join(root, name);
      await run('curl', ['-sS', '-o', out('curl.bin'), `tftp://127.0.0.1:${port}/image.bin`]);
      await run('tftp', ['-m', 'binary', '127.0.0.1', port, '-c', 'get', 'image.bin', out('hpa.bin')]);
      await run('atftp', [
        '-g',
        ...['-r', 'image.bin', '-l', out('atftp.bin')],
        ...['--option', 'blksize 1468', '--option', 'windowsize 16'],
        '127.0.0.1',
        port,
      ]);
      await run('busybox', ['tftp', '-p', '-l', out('curl.bin'), '-r', 'busybox-up.bin', '127.0.0.1', port]);
      await run('curl', ['-sS', '-T', out('hpa.bin'), `tftp://127.0.0.1:${port}/curl-up.bin`]);
      for (const name of ['curl.bin', 'hpa.bin', 'atftp.bin', 'busybox-up.bin', 'curl-up.bin']) {
        expectSameBytes(await readFile(out(name)), content);
      }
    });
  },
);
