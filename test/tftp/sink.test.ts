/**
 * The receiver's sink: a payload is valid only while write() runs (the socket reuses its
 * memory), so the sink copies it, into buffers it reuses when the Writable releases its chunks
 * (our upload files) and into new ones otherwise.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RELEASES_CHUNKS } from '../../src/files/atomic-file.js';
import { WritableSink } from '../../src/tftp/sink.js';

/** A Writable that records what each chunk held when written, and which memory it was in. A
 * releasing one must not look at a chunk after its callback, as the contract says. */
function collector(releases: boolean) {
  const chunks: Buffer[] = [];
  const memories: ArrayBufferLike[] = [];
  const writable = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(releases ? Buffer.from(chunk) : chunk);
      memories.push(chunk.buffer);
      cb();
    },
  });
  if (releases) Object.assign(writable, { [RELEASES_CHUNKS]: true });
  return { writable, chunks, memories };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('WritableSink', () => {
  it.each([false, true])(
    'copies each payload before the caller reuses it (releases chunks: %s)',
    async (releases) => {
      const { writable, chunks } = collector(releases);
      const sink = new WritableSink(writable);
      const reused = Buffer.alloc(8);
      for (let i = 0; i < 5; i++) {
        reused.fill(i);
        sink.write(i === 4 ? reused.subarray(0, 3) : reused);
        await tick();
      }
      reused.fill(0xff);
      expect(chunks.map((c) => c.toString('hex'))).toEqual([
        ...[0, 1, 2, 3].map((i) => Buffer.alloc(8, i).toString('hex')),
        '040404',
      ]);
    },
  );

  it('reuses the buffers a releasing Writable is done with, and never one still in use', async () => {
    const { writable, chunks, memories } = collector(true);
    const sink = new WritableSink(writable);
    sink.write(Buffer.alloc(8, 1));
    sink.write(Buffer.alloc(8, 2)); // the first is not released yet (callbacks run on a later tick)
    expect(memories[0]).not.toBe(memories[1]);
    await tick();
    sink.write(Buffer.alloc(8, 3));
    expect(memories.slice(0, 2)).toContain(memories[2]);
    expect(chunks.map((c) => c[0])).toEqual([1, 2, 3]);
    const plain = collector(false);
    const copying = new WritableSink(plain.writable);
    copying.write(Buffer.alloc(8, 1));
    await tick();
    copying.write(Buffer.alloc(8, 2));
    expect(plain.chunks[1]!.toString('hex')).toBe(Buffer.alloc(8, 2).toString('hex'));
    expect(plain.chunks[0]!.toString('hex')).toBe(Buffer.alloc(8, 1).toString('hex'));
  });
});
