/**
 * Transfers through a relay that drops, duplicates, reorders and delays datagrams: every byte
 * must arrive, both directions, lockstep and windowed. (Speed under real loss between network
 * namespaces is a benchmark: bench/tftp.bench.js.)
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  TftpClient,
  type TftpClientOptions,
  TftpServer,
  type TftpTransferStats,
} from '../../src/tftp/index.js';
import { expectSameBytes } from '../helpers/bytes.js';
import { type Impairment, LossyRelay } from '../helpers/lossy-relay.js';
import { tmpDir } from '../helpers/tmp.js';

// Loopback round trips are tiny: a low floor keeps recovery quick; a big budget rides out bad luck.
const timing = { timeoutMs: 100, minTimeoutMs: 20, maxTimeoutMs: 300, retries: 25 } as const;

async function throughRelay(
  damage: Impairment,
  clientOptions: Partial<TftpClientOptions>,
  seed: number,
  size = 150_003,
  serverOptions: { singlePort?: boolean } = {},
): Promise<{ get: TftpTransferStats; put: TftpTransferStats; relay: LossyRelay['counters'] }> {
  await using dir = await tmpDir();
  const content = randomBytes(size);
  await writeFile(path.join(dir.path, 'image.bin'), content);
  await using server = new TftpServer({ root: dir.path, ...timing, dallyMs: 500, ...serverOptions });
  const { port } = await server.start();
  await using relay = await LossyRelay.start({
    target: { address: '127.0.0.1', port },
    toServer: damage,
    toClient: damage,
    seed,
  });
  const client = new TftpClient({
    host: '127.0.0.1',
    port: relay.port,
    ...timing,
    dallyMs: 500,
    ...clientOptions,
  });
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c) => chunks.push(c));
  const get = await client.get('image.bin', sink);
  expectSameBytes(Buffer.concat(chunks), content);
  const put = await client.put(content, 'uploaded.bin');
  // The server commits before its final ACK, so the file is whole once put() resolves.
  expectSameBytes(await readFile(path.join(dir.path, 'uploaded.bin')), content);
  return { get, put, relay: { ...relay.counters } };
}

describe('TFTP through a lossy relay', () => {
  it.each([
    { name: 'lockstep (no windowsize)', options: { windowsize: 1, blksize: 512 }, size: 60_001 },
    { name: 'windowsize 16', options: { windowsize: 16, blksize: 1468 }, size: 300_001 },
    { name: 'windowsize 64, blksize 8192', options: { windowsize: 64, blksize: 8192 }, size: 800_001 },
  ])('10 percent loss both ways, $name: byte-exact both directions', async ({ options, size }) => {
    const { get, put, relay } = await throughRelay({ drop: 0.1 }, options, 7, size);
    expect(relay.dropped).toBeGreaterThan(10);
    expect(get.retransmits + get.timeouts).toBeGreaterThan(0);
    expect(put.retransmits + put.timeouts).toBeGreaterThan(0);
    expect(get.windowsize).toBe(options.windowsize);
  });

  it('10 percent loss both ways, windowsize 16, a single-port server: byte-exact both directions', async () => {
    const { get, put, relay } = await throughRelay(
      { drop: 0.1 },
      { windowsize: 16, blksize: 1468 },
      5,
      300_001,
      {
        singlePort: true,
      },
    );
    expect(relay.dropped).toBeGreaterThan(10);
    expect(get.retransmits + get.timeouts + put.retransmits + put.timeouts).toBeGreaterThan(0);
  });

  it('drops, duplicates, reordering and jitter together: byte-exact both directions', async () => {
    const { relay, get } = await throughRelay(
      { drop: 0.05, duplicate: 0.05, reorder: 0.05, delayMs: 1, jitterMs: 3 },
      { windowsize: 8, blksize: 1024 },
      11,
    );
    expect(relay.duplicated).toBeGreaterThan(0);
    expect(relay.reordered).toBeGreaterThan(0);
    expect(get.duplicates).toBeGreaterThan(0);
  });

  it('the relay damages only what it is told to', async () => {
    const { relay, get, put } = await throughRelay({}, { windowsize: 4 }, 3, 50_000);
    expect(relay).toMatchObject({ dropped: 0, duplicated: 0, reordered: 0 });
    expect(relay.forwarded).toBeGreaterThan(get.blocks + put.blocks);
  });
});
