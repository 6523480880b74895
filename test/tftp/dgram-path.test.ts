/**
 * The TFTP engine without the native datagram path (no compiler at install, another OS, or
 * TESTBED_FILESERVER_NATIVE=0): every datagram through node:dgram. Windowed and lockstep
 * transfers both ways, clean and through a lossy relay, must be byte-exact as with the native path.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { expectSameBytes } from '../helpers/bytes.js';
import { LossyRelay } from '../helpers/lossy-relay.js';
import { tmpDir } from '../helpers/tmp.js';

// Read once, when the engine's modules load (each test file gets its own module graph).
process.env.TESTBED_FILESERVER_NATIVE = '0';
const { nativeUdp } = await import('../../src/tftp/native.js');
const { TftpClient, TftpServer } = await import('../../src/tftp/index.js');
delete process.env.TESTBED_FILESERVER_NATIVE;

const dir = await tmpDir();
afterAll(() => dir[Symbol.asyncDispose]());
const timing = { timeoutMs: 100, minTimeoutMs: 20, maxTimeoutMs: 300, retries: 25, dallyMs: 300 } as const;

describe('TFTP on node:dgram alone', () => {
  it('has the native path off', () => {
    expect(nativeUdp).toBeUndefined();
  });

  it.each([
    { windowsize: 1, blksize: 512, size: 100_000, drop: 0 },
    { windowsize: 16, blksize: 1468, size: 1468 * 160, drop: 0 },
    { windowsize: 64, blksize: 8192, size: 2_000_001, drop: 0 },
    { windowsize: 16, blksize: 1468, size: 300_001, drop: 0.1 },
  ])('windowsize $windowsize, blksize $blksize, $size bytes, loss $drop: byte-exact both ways', async (t) => {
    const content = randomBytes(t.size);
    const name = `w${t.windowsize}-${t.blksize}-${t.drop}.bin`;
    await writeFile(path.join(dir.path, name), content);
    await using server = new TftpServer({ root: dir.path, ...timing });
    const { port } = await server.start();
    await using relay = await LossyRelay.start({
      target: { address: '127.0.0.1', port },
      toServer: { drop: t.drop },
      toClient: { drop: t.drop },
      seed: 3,
    });
    const client = new TftpClient({ host: '127.0.0.1', port: relay.port, ...timing, ...t });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c) => chunks.push(c));
    const get = await client.get(name, sink);
    expectSameBytes(Buffer.concat(chunks), content);
    expect(get.windowsize).toBe(t.windowsize);
    await client.put(content, `up-${name}`);
    expectSameBytes(await readFile(path.join(dir.path, `up-${name}`)), content);
    if (t.drop > 0) expect(relay.counters.dropped).toBeGreaterThan(10);
  });
});
