/**
 * A 1 GiB transfer each way with flat memory: the engine streams (reads ahead in bounded chunks,
 * reuses its window buffers, hands received blocks straight to the sink), so the process grows by
 * a bounded amount whatever the file size. Asserts on memory, never on time.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { rootHandler, TftpClient, TftpServer } from '../../src/tftp/index.js';
import { tmpDir } from '../helpers/tmp.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** A Writable that counts and forgets. */
function discard(): Writable & { bytes: number } {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      sink.bytes += chunk.length;
      callback();
    },
  }) as Writable & { bytes: number };
  sink.bytes = 0;
  return sink;
}

it('moves 1 GiB each way with the process growing by less than 160 MiB', async () => {
  await using dir = await tmpDir();
  const file = path.join(dir.path, 'one-gib.bin');
  const handle = await open(file, 'w');
  await handle.truncate(GiB); // sparse: no disk space, the page cache serves zeros
  await handle.close();
  const files = rootHandler(dir.path);
  const uploads: Array<Writable & { bytes: number }> = [];
  await using server = new TftpServer({
    root: dir.path,
    handler: {
      openRead: files.openRead!,
      openWrite: () => {
        const sink = discard();
        uploads.push(sink);
        return sink;
      },
    },
  });
  const { port } = await server.start();
  const client = new TftpClient({ host: '127.0.0.1', port, blksize: 65464, windowsize: 32 });

  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  try {
    const sink = discard();
    const got = await client.get('one-gib.bin', sink);
    expect(got).toMatchObject({ outcome: 'ok', bytes: GiB });
    expect(sink.bytes).toBe(GiB);
    const put = await client.put(file, 'back.bin');
    expect(put).toMatchObject({ outcome: 'ok', bytes: GiB });
    expect(uploads[0]!.bytes).toBe(GiB);
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  expect((peak - baseline) / MiB).toBeLessThan(160);
});
