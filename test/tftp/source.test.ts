import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toNetascii } from '../../src/tftp/netascii.js';
import {
  type BlockSource,
  BufferSource,
  NetasciiSource,
  RandomAccessSource,
  StreamSource,
} from '../../src/tftp/source.js';

/** Reads a source the way the sender does: block after block until a short one. */
async function drain(source: BlockSource, blksize: number): Promise<Buffer> {
  const blocks: Buffer[] = [];
  for (let i = 0; i < 100_000; i++) {
    const slot = Buffer.alloc(4 + blksize);
    const n = await source.read(slot, 4, blksize);
    blocks.push(slot.subarray(4, 4 + n));
    if (n < blksize) break;
  }
  await source.close();
  return Buffer.concat(blocks);
}

const content = fc.uint8Array({ maxLength: 5000 }).map((a) => Buffer.from(a));
const blksize = fc.integer({ min: 1, max: 700 });

describe('block sources', () => {
  it('Buffer, Readable and random access all yield the exact bytes for any block size', async () => {
    await fc.assert(
      fc.asyncProperty(content, blksize, fc.integer({ min: 1, max: 2000 }), async (data, size, chunk) => {
        expect(await drain(new BufferSource(data), size)).toEqual(data);
        const pieces = [];
        for (let at = 0; at < data.length; at += chunk) pieces.push(data.subarray(at, at + chunk));
        expect(await drain(new StreamSource(Readable.from(pieces)), size)).toEqual(data);
        const random = { size: data.length, read: async (p: number, l: number) => data.subarray(p, p + l) };
        expect(await drain(new RandomAccessSource(random, chunk), size)).toEqual(data);
        const unsized = { read: (p: number, l: number) => data.subarray(p, p + l) };
        expect(await drain(new RandomAccessSource(unsized, chunk), size)).toEqual(data);
        expect(await drain(new NetasciiSource(new BufferSource(data)), size)).toEqual(toNetascii(data));
      }),
      { numRuns: 150 },
    );
  });

  it('reuses its staging buffers through readInto, and closes the content once', async () => {
    const data = Buffer.alloc(10_000, 7);
    const targets = new Set<ArrayBufferLike>();
    let closed = 0;
    const source = new RandomAccessSource(
      {
        size: data.length,
        read: () => {
          throw new Error('readInto should be used');
        },
        readInto: async (target, offset, length, position) => {
          targets.add(target.buffer);
          return data.copy(target, offset, position, position + length);
        },
        close: () => {
          closed++;
        },
      },
      1000,
    );
    expect(await drain(source, 512)).toEqual(data);
    await source.close();
    expect(targets.size).toBeLessThanOrEqual(3);
    expect(closed).toBe(1);
  });

  it('surfaces read errors to the sender', async () => {
    const failing = new RandomAccessSource(
      { size: 100, read: async () => Promise.reject(new Error('EIO')) },
      64,
    );
    await expect(drain(failing, 10)).rejects.toThrow('EIO');
    const stream = new Readable({ read() {} });
    const source = new StreamSource(stream);
    const pending = source.read(Buffer.alloc(20), 0, 10);
    stream.destroy(new Error('broken pipe'));
    await expect(pending).rejects.toThrow('broken pipe');
  });
});
