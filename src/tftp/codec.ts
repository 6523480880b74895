/**
 * TFTP packets to bytes and back: RFC 1350 (RRQ, WRQ, DATA, ACK, ERROR) and RFC 2347 (OACK).
 * Pure functions over Buffers. {@link decodePacket} never throws anything but a {@link TftpError}
 * with code `ERR_TFTP_DECODE`; DATA payloads are views of the datagram, never copies.
 *
 * ```
 *  RRQ/WRQ  | 01/02 | filename | 0 | mode | 0 | opt1 | 0 | value1 | 0 | ... |
 *  DATA     | 03 | block# | data (0..blksize bytes) |
 *  ACK      | 04 | block# |
 *  ERROR    | 05 | code | message | 0 |
 *  OACK     | 06 | opt1 | 0 | value1 | 0 | ... |
 * ```
 * @module
 */
import { FileServerError } from '../errors.js';
import { TFTP_ERROR, TftpError } from './errors.js';

/** Packet type numbers. */
export const OPCODE = {
  /** Read request: the client downloads. */
  RRQ: 1,
  /** Write request: the client uploads. */
  WRQ: 2,
  /** A block of file data. */
  DATA: 3,
  /** Acknowledges a DATA block (or, as block 0, a WRQ). */
  ACK: 4,
  /** Ends the transfer with a code and a message. */
  ERROR: 5,
  /** Option acknowledgement (RFC 2347). */
  OACK: 6,
} as const;

/** Options as they appear on the wire: ordered name/value pairs, names as sent. */
export type TftpOptionList = ReadonlyArray<readonly [name: string, value: string]>;

/** A read (RRQ, opcode 1) or write (WRQ, opcode 2) request. */
export interface RequestPacket {
  /** 1 (RRQ) or 2 (WRQ). */
  readonly opcode: typeof OPCODE.RRQ | typeof OPCODE.WRQ;
  /** The file name exactly as sent. */
  readonly filename: string;
  /** Transfer mode as sent (`octet`, `netascii`, `mail`, any case). */
  readonly mode: string;
  /** Options (RFC 2347) in the order sent. */
  readonly options: TftpOptionList;
}

/** A DATA packet; `data` is a view of the datagram. */
export interface DataPacket {
  /** Always 3. */
  readonly opcode: typeof OPCODE.DATA;
  /** Block number on the wire (0..65535). */
  readonly block: number;
  /** The payload: a full block, or a shorter (possibly empty) last one. */
  readonly data: Buffer;
}

/** An ACK packet. */
export interface AckPacket {
  /** Always 4. */
  readonly opcode: typeof OPCODE.ACK;
  /** Block number on the wire (0..65535). */
  readonly block: number;
}

/** An ERROR packet. */
export interface ErrorPacket {
  /** Always 5. */
  readonly opcode: typeof OPCODE.ERROR;
  /** TFTP error number (see {@link TFTP_ERROR}). */
  readonly code: number;
  /** The peer's explanation (may be empty). */
  readonly message: string;
}

/** An option acknowledgement (RFC 2347). */
export interface OackPacket {
  /** Always 6. */
  readonly opcode: typeof OPCODE.OACK;
  /** The options the sender accepted, with the values it chose. */
  readonly options: TftpOptionList;
}

/** Any TFTP packet. */
export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

/** Largest block number on the wire. */
export const MAX_BLOCK = 0xffff;

function decodeError(reason: string): TftpError {
  return new TftpError('ERR_TFTP_DECODE', `Malformed TFTP packet: ${reason}`, {
    tftpCode: TFTP_ERROR.ILLEGAL_OPERATION,
    details: { reason },
  });
}

/**
 * Parses one datagram. Throws a {@link TftpError} (`ERR_TFTP_DECODE`, `tftpCode` 4) for anything
 * that is not a well-formed packet. Lenient where real clients are sloppy: trailing bytes after an
 * ACK, padding NULs after the last option, and an ERROR message without its final NUL.
 */
export function decodePacket(datagram: Uint8Array): TftpPacket {
  const buf = Buffer.isBuffer(datagram)
    ? datagram
    : Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  if (buf.length < 2) throw decodeError('shorter than an opcode');
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case OPCODE.RRQ:
    case OPCODE.WRQ: {
      const fields = splitStrings(buf, 2);
      if (fields.length < 2) throw decodeError('request without a NUL-terminated filename and mode');
      return { opcode, filename: fields[0]!, mode: fields[1]!, options: pairs(fields, 2) };
    }
    case OPCODE.DATA:
      if (buf.length < 4) throw decodeError('DATA shorter than 4 bytes');
      return { opcode, block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case OPCODE.ACK:
      if (buf.length < 4) throw decodeError('ACK shorter than 4 bytes');
      return { opcode, block: buf.readUInt16BE(2) };
    case OPCODE.ERROR: {
      if (buf.length < 4) throw decodeError('ERROR shorter than 4 bytes');
      const end = buf.indexOf(0, 4);
      return {
        opcode,
        code: buf.readUInt16BE(2),
        message: buf.toString('utf8', 4, end === -1 ? buf.length : end),
      };
    }
    case OPCODE.OACK:
      return { opcode, options: pairs(splitStrings(buf, 2), 0) };
    default:
      throw decodeError(`unknown opcode ${opcode}`);
  }
}

/** NUL-terminated strings from `start`; bytes after the last NUL make the packet malformed. */
function splitStrings(buf: Buffer, start: number): string[] {
  const out: string[] = [];
  let at = start;
  while (at < buf.length) {
    const end = buf.indexOf(0, at);
    if (end === -1) throw decodeError('string without its terminating NUL');
    out.push(buf.toString('utf8', at, end));
    at = end + 1;
  }
  return out;
}

/** Name/value pairs; an empty name ends the list (padding), a name without a value is dropped. */
function pairs(fields: string[], from: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = from; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    if (name === '') break;
    out.push([name, fields[i + 1]!]);
  }
  return out;
}

function invalid(message: string): never {
  throw new FileServerError('ERR_INVALID_OPTIONS', message);
}

function checkString(value: string, what: string): void {
  if (value.includes('\0')) invalid(`TFTP ${what} must not contain NUL: ${JSON.stringify(value)}`);
}

function checkOptions(options: TftpOptionList): void {
  for (const [name, value] of options) {
    if (name === '') invalid('TFTP option names must not be empty');
    checkString(name, 'option name');
    checkString(value, 'option value');
  }
}

function checkBlock(block: number): void {
  if (!Number.isInteger(block) || block < 0 || block > MAX_BLOCK) invalid(`TFTP block number ${block}`);
}

function stringsLength(strings: readonly string[]): number {
  let n = 0;
  for (const s of strings) n += Buffer.byteLength(s) + 1;
  return n;
}

function writeStrings(buf: Buffer, at: number, strings: readonly string[]): number {
  for (const s of strings) {
    at += buf.write(s, at, 'utf8');
    buf[at++] = 0;
  }
  return at;
}

/** Encodes any packet into a new Buffer. Throws ERR_INVALID_OPTIONS for values the wire cannot carry. */
export function encodePacket(packet: TftpPacket): Buffer {
  switch (packet.opcode) {
    case OPCODE.RRQ:
    case OPCODE.WRQ: {
      checkString(packet.filename, 'filename');
      checkString(packet.mode, 'mode');
      checkOptions(packet.options);
      const strings = [packet.filename, packet.mode, ...packet.options.flat()];
      const buf = Buffer.allocUnsafe(2 + stringsLength(strings));
      buf.writeUInt16BE(packet.opcode, 0);
      writeStrings(buf, 2, strings);
      return buf;
    }
    case OPCODE.DATA: {
      checkBlock(packet.block);
      const buf = Buffer.allocUnsafe(4 + packet.data.length);
      writeDataHeader(buf, packet.block);
      buf.set(packet.data, 4);
      return buf;
    }
    case OPCODE.ACK:
      checkBlock(packet.block);
      return encodeAck(packet.block);
    case OPCODE.ERROR:
      return encodeError(packet.code, packet.message);
    case OPCODE.OACK: {
      checkOptions(packet.options);
      const strings = packet.options.flat();
      const buf = Buffer.allocUnsafe(2 + stringsLength(strings));
      buf.writeUInt16BE(OPCODE.OACK, 0);
      writeStrings(buf, 2, strings);
      return buf;
    }
  }
}

/** Writes a DATA header (opcode 3, block number) into the first 4 bytes of `buf`. */
export function writeDataHeader(buf: Buffer, block: number): void {
  buf[0] = 0;
  buf[1] = OPCODE.DATA;
  buf[2] = block >>> 8;
  buf[3] = block & 0xff;
}

/** A 4-byte ACK. */
export function encodeAck(block: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf[0] = 0;
  buf[1] = OPCODE.ACK;
  buf[2] = (block >>> 8) & 0xff;
  buf[3] = block & 0xff;
  return buf;
}

/**
 * An ERROR packet. NULs in the message are replaced (the wire cannot carry them) and the message
 * is cut to fit one 512-byte packet.
 */
export function encodeError(code: number, message: string): Buffer {
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) invalid(`TFTP error number ${code}`);
  let text = Buffer.from(message.replaceAll('\0', ' '), 'utf8');
  if (text.length > 507) text = text.subarray(0, 507);
  const buf = Buffer.allocUnsafe(5 + text.length);
  buf.writeUInt16BE(OPCODE.ERROR, 0);
  buf.writeUInt16BE(code, 2);
  text.copy(buf, 4);
  buf[buf.length - 1] = 0;
  return buf;
}

/** Name of an opcode for logs (`RRQ`, `DATA`, ...). */
export function opcodeName(opcode: number): string {
  return (
    (Object.keys(OPCODE) as Array<keyof typeof OPCODE>).find((k) => OPCODE[k] === opcode) ?? `op${opcode}`
  );
}
