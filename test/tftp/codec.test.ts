import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePacket,
  encodeAck,
  encodeError,
  encodePacket,
  OPCODE,
  type TftpPacket,
} from '../../src/tftp/codec.js';
import { TftpError } from '../../src/tftp/errors.js';

const text = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0'));
const name = text.filter((s) => s !== '');
const options = fc.array(fc.tuple(name, text), { maxLength: 6 });
const block = fc.integer({ min: 0, max: 0xffff });

const packet: fc.Arbitrary<TftpPacket> = fc.oneof(
  fc.record({
    opcode: fc.constantFrom(OPCODE.RRQ, OPCODE.WRQ),
    filename: text,
    mode: text,
    options,
  }),
  fc.record({
    opcode: fc.constant(OPCODE.DATA),
    block,
    data: fc.uint8Array({ maxLength: 1500 }).map((a) => Buffer.from(a)),
  }),
  fc.record({ opcode: fc.constant(OPCODE.ACK), block }),
  fc.record({ opcode: fc.constant(OPCODE.ERROR), code: block, message: text }),
  fc.record({ opcode: fc.constant(OPCODE.OACK), options }),
);

describe('codec', () => {
  it('decode(encode(p)) equals p for every packet', () => {
    fc.assert(
      fc.property(packet, (p) => {
        expect(decodePacket(encodePacket(p))).toEqual(p);
      }),
      { numRuns: 2000 },
    );
  });

  it('arbitrary bytes give a packet or a typed decode error, never another throw', () => {
    const framed = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      // Plausible prefixes find the interesting paths far more often than pure noise.
      fc
        .tuple(fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 600 }))
        .map(([op, rest]) => Uint8Array.from([0, op, ...rest])),
    );
    fc.assert(
      fc.property(framed, (bytes) => {
        try {
          const p = decodePacket(bytes);
          expect(p.opcode).toBeGreaterThanOrEqual(1);
          expect(p.opcode).toBeLessThanOrEqual(6);
        } catch (error) {
          expect(error).toBeInstanceOf(TftpError);
          expect(error).toMatchObject({ code: 'ERR_TFTP_DECODE', tftpCode: 4 });
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('encodes the RFC 1350 and RFC 2347 layouts byte for byte', () => {
    expect(
      encodePacket({ opcode: OPCODE.RRQ, filename: 'a.bin', mode: 'octet', options: [['blksize', '1468']] }),
    ).toEqual(Buffer.from('\x00\x01a.bin\x00octet\x00blksize\x001468\x00', 'latin1'));
    expect(encodeAck(0x1234)).toEqual(Buffer.from([0, 4, 0x12, 0x34]));
    expect(encodePacket({ opcode: OPCODE.DATA, block: 65535, data: Buffer.from('hi') })).toEqual(
      Buffer.from([0, 3, 0xff, 0xff, 0x68, 0x69]),
    );
    expect(encodeError(1, 'File not found')).toEqual(
      Buffer.from('\x00\x05\x00\x01File not found\x00', 'latin1'),
    );
    expect(encodePacket({ opcode: OPCODE.OACK, options: [['tsize', '42']] })).toEqual(
      Buffer.from('\x00\x06tsize\x0042\x00', 'latin1'),
    );
  });

  it('decodes DATA as a view of the datagram, without copying', () => {
    const datagram = Buffer.from([0, 3, 0, 7, 1, 2, 3]);
    const p = decodePacket(datagram);
    if (p.opcode !== OPCODE.DATA) throw new Error('not DATA');
    expect(p.block).toBe(7);
    expect(p.data.buffer).toBe(datagram.buffer);
  });

  it.each([
    ['an empty datagram', []],
    ['a lone byte', [0]],
    ['an unknown opcode', [0, 9, 0, 0]],
    ['opcode 0', [0, 0]],
    ['a short ACK', [0, 4, 0]],
    ['a short DATA', [0, 3, 1]],
    ['a 3-byte ERROR (atftp CVE-2019-11365)', [0, 5, 0]],
    ['a request without NULs', [0, 1, 0x61, 0x62]],
    ['a request without a mode', [0, 1, 0x61, 0]],
    ['a request whose mode lacks its NUL', [0, 2, 0x61, 0, 0x6f, 0x63]],
    ['an option name without its NUL', [0, 1, 0x61, 0, 0x6f, 0, 0x62, 0x6c]],
  ])('refuses %s with ERR_TFTP_DECODE', (_what, bytes) => {
    expect(() => decodePacket(Uint8Array.from(bytes))).toThrow(
      expect.objectContaining({ code: 'ERR_TFTP_DECODE', tftpCode: 4 }),
    );
  });

  it('is lenient where real clients are sloppy', () => {
    // PXE ROMs pad requests with NULs; an option without a value is dropped.
    expect(decodePacket(Buffer.from('\x00\x01f\x00octet\x00tsize\x000\x00\x00\x00\x00', 'latin1'))).toEqual({
      opcode: OPCODE.RRQ,
      filename: 'f',
      mode: 'octet',
      options: [['tsize', '0']],
    });
    expect(decodePacket(Buffer.from('\x00\x01f\x00octet\x00blksize\x00', 'latin1'))).toMatchObject({
      options: [],
    });
    // ACKs padded to a minimum frame, ERROR messages without their NUL.
    expect(decodePacket(Buffer.from([0, 4, 0, 1, 0, 0, 0]))).toEqual({ opcode: OPCODE.ACK, block: 1 });
    expect(decodePacket(Buffer.from('\x00\x05\x00\x02nope', 'latin1'))).toEqual({
      opcode: OPCODE.ERROR,
      code: 2,
      message: 'nope',
    });
  });

  it('refuses to encode what the wire cannot carry', () => {
    expect(() => encodePacket({ opcode: OPCODE.RRQ, filename: 'a\0b', mode: 'octet', options: [] })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
    );
    expect(() => encodePacket({ opcode: OPCODE.ACK, block: 70000 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
    );
    // ERROR messages are made to fit instead: NULs replaced, cut to one packet.
    const long = encodeError(0, `x\0y${'z'.repeat(1000)}`);
    expect(long.length).toBeLessThanOrEqual(512);
    expect(decodePacket(long)).toMatchObject({ message: expect.stringMatching(/^x yz+$/) });
  });
});
