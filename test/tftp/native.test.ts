/**
 * The native datagram path (src/native/udp.c): built at install, loaded on Linux, and what it
 * sends in one call arrives as separate datagrams, in order, byte for byte. (Every other TFTP test
 * runs on it too; dgram-path.test.ts runs transfers without it.)
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { constants } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeUdp } from '../../src/tftp/native.js';
import { segmentRun, UdpSocket } from '../../src/tftp/transport.js';
import { inCI } from '../helpers/env.js';

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const socket of open.splice(0)) socket.close();
});

/** A plain dgram socket that collects what it receives. */
async function receiver(address: string) {
  const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  open.push(socket);
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  socket.bind(0, address);
  await once(socket, 'listening');
  return {
    port: socket.address().port,
    received,
    /** Resolves once `n` datagrams are in (bounded: 5 s). */
    async take(n: number): Promise<Buffer[]> {
      const deadline = Date.now() + 5000;
      while (received.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      return received;
    },
  };
}

const packets = (lengths: number[]) => lengths.map((n) => randomBytes(n));

describe('segmentRun: which datagrams one segmented send carries', () => {
  it('takes equal sizes up to the kernel limit of 64 segments', () => {
    expect(segmentRun(Array(100).fill(516), 0, 100)).toBe(64);
    expect(segmentRun(Array(100).fill(516), 64, 100)).toBe(36);
  });

  it('ends a run after a shorter datagram (the end of the file) and before a longer one', () => {
    expect(segmentRun([1472, 1472, 100, 1472], 0, 4)).toBe(3);
    expect(segmentRun([100, 1472], 0, 2)).toBe(1);
  });

  it('keeps a run within one datagram of payload (65507 bytes)', () => {
    expect(segmentRun(Array(16).fill(8196), 0, 16)).toBe(7);
    expect(segmentRun(Array(16).fill(65468), 0, 16)).toBe(1);
  });
});

describe.skipIf(!nativeUdp && !inCI)('the native datagram path', () => {
  it('is built and loaded on Linux (CI has a compiler and Node headers)', () => {
    expect(process.platform).toBe('linux');
    expect(nativeUdp?.sendBatch).toBeTypeOf('function');
  });

  it.each(['127.0.0.1', '::1'])('one call sends a window as separate datagrams over %s', async (address) => {
    const to = await receiver(address);
    const sender = await UdpSocket.bind(address, 0);
    open.push(sender);
    const fd = sender.descriptorForTest();
    expect(fd).toBeGreaterThan(2);
    const window = packets([...Array(15).fill(1472), 300]);
    const lengths = window.map((p) => p.length);
    const sent = nativeUdp!.sendBatch(fd!, address, to.port, 1472, window, lengths, 0, window.length);
    expect(sent).toBe(15 * 1472 + 300);
    expect(await to.take(16)).toEqual(window);
  });

  it('refuses what is not an IP literal or a batch, and reports a bad descriptor as -EBADF', () => {
    const one = [Buffer.alloc(4)];
    expect(() => nativeUdp!.sendBatch(3, 'localhost', 69, 0, one, [4], 0, 1)).toThrow(TypeError);
    expect(() => nativeUdp!.sendBatch(3, '127.0.0.1', 69, 0, one, [4], 0, 2)).toThrow(TypeError);
    expect(() => nativeUdp!.sendBatch(3, '127.0.0.1', 69, 0, one, [5], 0, 1)).toThrow(TypeError);
    expect(() => nativeUdp!.sendBatch(3, '127.0.0.1', 69, 65536, one, [4], 0, 1)).toThrow(TypeError);
    expect(() => nativeUdp!.sendBatch(3, '127.0.0.1', 69, 0, one, [4], 1, 1)).toThrow(TypeError);
    expect(nativeUdp!.sendBatch(-1, '127.0.0.1', 69, 0, one, [4], 0, 1)).toBe(-constants.errno.EBADF);
  });
});

describe('UdpSocket.sendMany', () => {
  it.each([
    { name: 'a window of 1468-byte blocks with a short last one', lengths: [...Array(40).fill(1472), 17] },
    { name: 'more than 64 datagrams', lengths: Array(150).fill(516) },
    { name: 'blocks whose run would pass 64 KiB', lengths: Array(20).fill(8196) },
    { name: 'mixed sizes', lengths: [516, 1472, 1472, 4, 65468, 65468, 1000, 1000, 1000] },
  ])('delivers $name in order, byte for byte', async ({ lengths }) => {
    const to = await receiver('127.0.0.1');
    const socket = await UdpSocket.bind('127.0.0.1', 0, { bufferBytes: 4 * 2 ** 20 });
    open.push(socket);
    // Each buffer is larger than what is sent from it: only `length` bytes may leave.
    const buffers = packets(lengths.map((n) => n + 7));
    socket.sendMany(buffers, lengths, lengths.length, to.port, '127.0.0.1');
    const received = await to.take(lengths.length);
    expect(received.map((m) => m.length)).toEqual(lengths);
    expect(received).toEqual(buffers.map((b, i) => b.subarray(0, lengths[i])));
  });
});
