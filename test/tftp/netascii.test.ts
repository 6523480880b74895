import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromNetascii, NetasciiDecoder, NetasciiEncoder, toNetascii } from '../../src/tftp/netascii.js';

const bytes = (s: string) => Buffer.from(s, 'latin1');

/** Encodes through blocks of `size` bytes, the way the sender fills DATA packets. */
function encodeInBlocks(input: Buffer, size: number): Buffer[] {
  const encoder = new NetasciiEncoder();
  const blocks: Buffer[] = [];
  let rest = input;
  for (;;) {
    const block = Buffer.alloc(size);
    const { read, written } = encoder.encode(rest, block);
    rest = rest.subarray(read);
    blocks.push(block.subarray(0, written));
    if (written < size) return blocks;
  }
}

describe('netascii', () => {
  it('sends LF as CR LF and CR as CR NUL; receives the reverse', () => {
    expect(toNetascii(bytes('a\nb\rc\r\n'))).toEqual(bytes('a\r\nb\r\0c\r\0\r\n'));
    expect(fromNetascii(bytes('a\r\nb\r\0c\r\0\r\n'))).toEqual(bytes('a\nb\rc\r\n'));
  });

  it('keeps a lone CR, and a trailing CR at the end of the file', () => {
    expect(fromNetascii(bytes('a\rb'))).toEqual(bytes('a\rb'));
    expect(fromNetascii(bytes('end\r'))).toEqual(bytes('end\r'));
  });

  it('carries a CR LF pair split across blocks, both ways', () => {
    // "a\n" is "a\r\n" on the wire: with 2-byte blocks the LF lands in the next block.
    // The wire form is an exact multiple of the block size, so an empty final block follows.
    expect(encodeInBlocks(bytes('a\nb'), 2).map((b) => b.toString('latin1'))).toEqual(['a\r', '\nb', '']);
    const decoder = new NetasciiDecoder();
    const out = Buffer.concat([decoder.decode(bytes('a\r')), decoder.decode(bytes('\nb')), decoder.end()]);
    expect(out).toEqual(bytes('a\nb'));
  });

  it('round-trips any content through any block size', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
        fc.integer({ min: 1, max: 40 }),
        (input, size) => {
          const blocks = encodeInBlocks(input, size);
          expect(Buffer.concat(blocks)).toEqual(toNetascii(input));
          const decoder = new NetasciiDecoder();
          const back = Buffer.concat([...blocks.map((b) => decoder.decode(b)), decoder.end()]);
          expect(back).toEqual(input);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('checkpoints let a sender rewind and produce the same block again', () => {
    const input = bytes('x\n'.repeat(10));
    const encoder = new NetasciiEncoder();
    const first = Buffer.alloc(2);
    expect(encoder.encode(input, first).read).toBe(2);
    const state = encoder.checkpoint(); // "x\r" went out; the LF of the pair waits for the next block
    expect(encoder.hasPending).toBe(true);
    const second = Buffer.alloc(3);
    const { read } = encoder.encode(input.subarray(2), second);
    encoder.restore(state);
    const again = Buffer.alloc(3);
    expect(encoder.encode(input.subarray(2), again).read).toBe(read);
    expect(again).toEqual(second);
    const decoder = new NetasciiDecoder();
    decoder.decode(bytes('ab\r'));
    const saved = decoder.checkpoint();
    expect(decoder.decode(bytes('\n'))).toEqual(bytes('\n'));
    decoder.restore(saved);
    expect(decoder.decode(bytes('\0'))).toEqual(bytes('\r'));
  });
});
