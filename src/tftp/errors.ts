/**
 * {@link TftpError}: the TFTP flavour of {@link FileServerError}, carrying the wire error number
 * (`tftpCode`) next to the string `code`, and the mapping between thrown errors and the numbers
 * sent in ERROR packets.
 * @module
 */
import { type ErrorCode, FileServerError, type FileServerErrorOptions } from '../errors.js';

/** The error numbers of RFC 1350 and RFC 2347, as sent in ERROR packets. */
export const TFTP_ERROR = {
  /** 0: not defined, see the message. */
  NOT_DEFINED: 0,
  /** 1: file not found. */
  FILE_NOT_FOUND: 1,
  /** 2: access violation. */
  ACCESS_VIOLATION: 2,
  /** 3: disk full or allocation exceeded. */
  DISK_FULL: 3,
  /** 4: illegal TFTP operation. */
  ILLEGAL_OPERATION: 4,
  /** 5: unknown transfer ID. */
  UNKNOWN_TID: 5,
  /** 6: file already exists. */
  FILE_EXISTS: 6,
  /** 7: no such user. */
  NO_SUCH_USER: 7,
  /** 8: option negotiation refused (RFC 2347). */
  OPTION_REFUSED: 8,
} as const;

/** A TFTP wire error number (0..8 are defined; peers may send others). */
export type TftpErrorNumber = number;

/** The error codes a {@link TftpError} can carry. */
export type TftpErrorCode = Extract<
  ErrorCode,
  'ERR_TFTP' | 'ERR_TFTP_TIMEOUT' | 'ERR_TFTP_PROTOCOL' | 'ERR_TFTP_DECODE' | 'ERR_TRANSFER_ABORTED'
>;

/** Options of the {@link TftpError} constructor. */
export interface TftpErrorOptions extends FileServerErrorOptions {
  /** The wire error number that goes with this error (sent to, or received from, the peer). */
  tftpCode?: TftpErrorNumber;
}

const tftpBrand = Symbol.for('testbed-fileserver.tftp-error');

/**
 * A TFTP failure. `code` says what kind (`ERR_TFTP`: the peer sent ERROR, or a handler refused;
 * `ERR_TFTP_TIMEOUT`; `ERR_TFTP_PROTOCOL`; `ERR_TFTP_DECODE`), `tftpCode` the wire number.
 *
 * A server handler can throw one to choose the ERROR packet a client gets:
 * `throw new TftpError('ERR_TFTP', 'no config for this device', { tftpCode: 1 })`.
 */
export class TftpError extends FileServerError {
  /** The TFTP error number (0..8), when one applies. */
  readonly tftpCode: TftpErrorNumber | undefined;

  constructor(code: TftpErrorCode, message: string, options: TftpErrorOptions = {}) {
    super(code, message, options);
    this.name = 'TftpError';
    this.tftpCode = options.tftpCode;
    Object.defineProperty(this, tftpBrand, { value: true });
  }

  /** `instanceof` also recognises TftpErrors from another copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[tftpBrand] === true
    );
  }
}

const byFileServerCode: Partial<Record<ErrorCode, TftpErrorNumber>> = {
  ERR_NOT_FOUND: TFTP_ERROR.FILE_NOT_FOUND,
  ERR_PATH_OUTSIDE_ROOT: TFTP_ERROR.ACCESS_VIOLATION,
  ERR_READ_ONLY: TFTP_ERROR.ACCESS_VIOLATION,
  ERR_FILE_TOO_LARGE: TFTP_ERROR.DISK_FULL,
  ERR_FILE_EXISTS: TFTP_ERROR.FILE_EXISTS,
};

const bySystemCode: Readonly<Record<string, TftpErrorNumber>> = {
  ENOENT: TFTP_ERROR.FILE_NOT_FOUND,
  ENOTDIR: TFTP_ERROR.FILE_NOT_FOUND,
  EACCES: TFTP_ERROR.ACCESS_VIOLATION,
  EPERM: TFTP_ERROR.ACCESS_VIOLATION,
  EISDIR: TFTP_ERROR.ACCESS_VIOLATION,
  EROFS: TFTP_ERROR.ACCESS_VIOLATION,
  ENOSPC: TFTP_ERROR.DISK_FULL,
  EDQUOT: TFTP_ERROR.DISK_FULL,
  EFBIG: TFTP_ERROR.DISK_FULL,
  EEXIST: TFTP_ERROR.FILE_EXISTS,
};

const standardText: Readonly<Record<number, string>> = {
  0: 'Not defined',
  1: 'File not found',
  2: 'Access violation',
  3: 'Disk full or allocation exceeded',
  4: 'Illegal TFTP operation',
  5: 'Unknown transfer ID',
  6: 'File already exists',
  7: 'No such user',
  8: 'Option negotiation refused',
};

/**
 * The ERROR packet a thrown error turns into. A {@link TftpError} (or any error with a numeric
 * `tftpCode`) keeps its number and message; our own file errors map to their TFTP meaning with
 * their message (which names only what the client asked for); anything else becomes the standard
 * text of its number, so that no server path or internal detail reaches the network.
 * @internal
 */
export function toWireError(error: unknown): { code: TftpErrorNumber; message: string } {
  const explicit = (error as { tftpCode?: unknown } | undefined)?.tftpCode;
  if (typeof explicit === 'number' && Number.isInteger(explicit) && explicit >= 0 && explicit <= 0xffff) {
    return { code: explicit, message: (error as Error).message ?? standardText[explicit] ?? '' };
  }
  if (error instanceof FileServerError) {
    const code = byFileServerCode[error.code];
    if (code !== undefined) return { code, message: error.message };
  }
  const sys = (error as NodeJS.ErrnoException | undefined)?.code;
  const code = (typeof sys === 'string' && bySystemCode[sys]) || TFTP_ERROR.NOT_DEFINED;
  return { code, message: code === TFTP_ERROR.NOT_DEFINED ? 'Internal server error' : standardText[code]! };
}

/** The standard text of a TFTP error number. @internal */
export function errorText(code: TftpErrorNumber): string {
  return standardText[code] ?? `Error ${code}`;
}
