/**
 * Every error this package throws is a {@link FileServerError} with a string `code` from
 * {@link ERROR_CODES} and, where one exists, the underlying error as `cause`.
 * @module
 */

const meanings = {
  ERR_INVALID_OPTIONS: 'An option is missing, malformed or conflicts with another option.',
  ERR_UNSUPPORTED_PROTOCOL: 'The protocol is not one of tftp, ftp, http, scp, sftp.',
  ERR_INVALID_STATE: 'The call is not allowed in the current lifecycle state (e.g. start() twice).',
  ERR_NOT_RUNNING: 'Connection info was read from a server that is not running.',
  ERR_NO_REACHABLE_ADDRESS: 'No local address matches the subnet, interface or route asked for.',
  ERR_AMBIGUOUS_ADDRESS: 'Several local addresses match the subnet; a narrower one is needed.',
  ERR_ADDRESS_IN_USE: 'The port is already bound by another socket (EADDRINUSE).',
  ERR_ADDRESS_NOT_AVAILABLE: 'The bind address does not belong to this host (EADDRNOTAVAIL).',
  ERR_PERMISSION_DENIED: 'The operating system refused the operation (EACCES/EPERM), e.g. a port below 1024.',
  ERR_ROOT_INVALID: 'The root folder is missing, not a folder, unreadable, or the file system root.',
  ERR_START_FAILED: 'The server could not start for another reason; see `cause`.',
  ERR_START_TIMEOUT: 'start() did not finish within startTimeoutMs; everything it began was undone.',
  ERR_STOP_FAILED: 'One or more teardown steps failed; `cause` is an AggregateError of them.',
  ERR_NAME_TAKEN: 'A running server is already registered under this name in the testbed.',
  ERR_SERVER_NOT_FOUND: 'No server of this name is registered in the testbed.',
  ERR_TESTBED_INVALID: 'A testbed file could not be read or does not have the expected shape.',
  ERR_PATH_OUTSIDE_ROOT: 'A requested path resolves outside the served root.',
  ERR_NOT_FOUND: 'The requested file does not exist.',
  ERR_FILE_EXISTS: 'The target file exists and overwriting is not allowed.',
  ERR_FILE_TOO_LARGE: 'The transfer exceeds maxFileSize.',
  ERR_READ_ONLY: 'A write was attempted on a read-only server.',
  ERR_TRANSFER_FAILED: 'A transfer failed; `cause` says why.',
  ERR_TRANSFER_ABORTED: 'A transfer was aborted (signal, stop() or the peer went away).',
  ERR_VERIFY_FAILED: 'A copied file did not match the expected size or SHA-256.',
  ERR_TFTP: 'The TFTP peer answered with an ERROR packet; `tftpCode` holds its error number.',
  ERR_TFTP_TIMEOUT: 'The TFTP peer stopped answering and the retry budget ran out.',
  ERR_TFTP_PROTOCOL: 'The TFTP peer broke the protocol (unexpected packet or option).',
  ERR_TFTP_DECODE: 'A datagram is not a well-formed TFTP packet.',
  ERR_CREDENTIALS_MISSING: 'The server needs credentials that the testbed entry does not hold.',
  ERR_PROTOCOL_MISMATCH: 'A URL names a server whose protocol differs from the URL scheme.',
  ERR_DEVICE_CONNECTION: 'The connection to a device failed or was lost.',
  ERR_DEVICE_COMMAND_FAILED: 'A device command printed an error pattern; `output` holds the text.',
  ERR_DEVICE_TIMEOUT: 'A device command did not finish within its timeout.',
  ERR_CLI_USAGE: 'The command line is malformed.',
} as const;

/**
 * A documented error code, e.g. `'ERR_ADDRESS_IN_USE'`; docs/errors.md explains every one.
 * @useDeclaredType
 */
export type ErrorCode = keyof typeof meanings;

/**
 * Every error code with a one-line meaning. docs/errors.md documents each one in full; a test
 * checks that the two lists agree.
 */
export const ERROR_CODES: Readonly<Record<ErrorCode, string>> = meanings;

const brand = Symbol.for('testbed-fileserver.error');

/** Options accepted by {@link FileServerError}'s constructor. */
export interface FileServerErrorOptions {
  /** The underlying error, kept as `cause`. */
  cause?: unknown;
  /** Structured facts about the failure (candidates, paths, ...); never credentials. */
  details?: Record<string, unknown>;
}

/** The one error class of this package. Match on `code`, never on the message. */
export class FileServerError extends Error {
  /** What went wrong, as a stable string. */
  readonly code: ErrorCode;
  /** Structured facts about the failure. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: FileServerErrorOptions = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined);
    this.name = 'FileServerError';
    this.code = code;
    this.details = options.details;
    Object.defineProperty(this, brand, { value: true });
  }

  /** `instanceof` also recognises errors from another copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }
}

/** True when `error` is a {@link FileServerError}, optionally with the given code. */
export function isFileServerError(error: unknown, code?: ErrorCode): error is FileServerError {
  return error instanceof FileServerError && (code === undefined || error.code === code);
}

const systemCodes: Readonly<Record<string, ErrorCode>> = {
  EADDRINUSE: 'ERR_ADDRESS_IN_USE',
  EADDRNOTAVAIL: 'ERR_ADDRESS_NOT_AVAILABLE',
  EACCES: 'ERR_PERMISSION_DENIED',
  EPERM: 'ERR_PERMISSION_DENIED',
};

/**
 * Wraps an operating-system error (EADDRINUSE, EACCES, ...) in a FileServerError whose code says
 * what happened; other errors get `fallback`. FileServerErrors and aborts pass through unchanged.
 * @internal
 */
export function fromSystemError(error: unknown, fallback: ErrorCode, context: string): unknown {
  if (error instanceof FileServerError) return error;
  if (error instanceof Error && error.name === 'AbortError') return error;
  const sys = (error as NodeJS.ErrnoException | undefined)?.code;
  const code = (sys && systemCodes[sys]) || fallback;
  const reason = error instanceof Error ? error.message : String(error);
  return new FileServerError(code, `${context}: ${reason}`, { cause: error });
}
