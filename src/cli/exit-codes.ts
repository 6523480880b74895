/**
 * The CLI's exit statuses: one per kind of failure a script may want to tell apart.
 * docs/cli.md lists them; test/cli checks each.
 * @internal
 * @module
 */
import { type ErrorCode, FileServerError } from '../errors.js';

/** Exit statuses of `testbed-fileserver`. */
export const EXIT = {
  /** Done; also a server stopped by Ctrl-C or SIGTERM. */
  ok: 0,
  /** Anything not listed below (a bug, a failed stop). */
  failure: 1,
  /** Bad command line or options. */
  usage: 2,
  /** The port is busy. */
  portBusy: 3,
  /** The operating system refused (a port below 1024, an unreadable file). */
  permission: 4,
  /** No local address matches the subnet, interface or route, or several do. */
  address: 5,
  /** The folder to serve is missing or unusable. */
  root: 6,
  /** The testbed file is invalid, or lacks the server, its credentials or protocol. */
  testbed: 7,
  /** The file is missing, exists already, is outside the root, or is refused (read-only, too large). */
  file: 8,
  /** A transfer failed or was cut. */
  transfer: 9,
  /** The copy arrived but did not match the expected size or SHA-256. */
  verify: 10,
  /** get/put interrupted by Ctrl-C (128 + SIGINT). */
  interrupted: 130,
} as const;

const byCode: Partial<Record<ErrorCode, number>> = {
  ERR_CLI_USAGE: EXIT.usage,
  ERR_INVALID_OPTIONS: EXIT.usage,
  ERR_UNSUPPORTED_PROTOCOL: EXIT.usage,
  ERR_ADDRESS_IN_USE: EXIT.portBusy,
  ERR_PERMISSION_DENIED: EXIT.permission,
  ERR_NO_REACHABLE_ADDRESS: EXIT.address,
  ERR_AMBIGUOUS_ADDRESS: EXIT.address,
  ERR_ADDRESS_NOT_AVAILABLE: EXIT.address,
  ERR_ROOT_INVALID: EXIT.root,
  ERR_TESTBED_INVALID: EXIT.testbed,
  ERR_SERVER_NOT_FOUND: EXIT.testbed,
  ERR_CREDENTIALS_MISSING: EXIT.testbed,
  ERR_PROTOCOL_MISMATCH: EXIT.testbed,
  ERR_NAME_TAKEN: EXIT.testbed,
  ERR_NOT_FOUND: EXIT.file,
  ERR_FILE_EXISTS: EXIT.file,
  ERR_PATH_OUTSIDE_ROOT: EXIT.file,
  ERR_READ_ONLY: EXIT.file,
  ERR_FILE_TOO_LARGE: EXIT.file,
  ERR_TRANSFER_FAILED: EXIT.transfer,
  ERR_TRANSFER_ABORTED: EXIT.transfer,
  ERR_TFTP: EXIT.transfer,
  ERR_TFTP_TIMEOUT: EXIT.transfer,
  ERR_TFTP_PROTOCOL: EXIT.transfer,
  ERR_TFTP_DECODE: EXIT.transfer,
  ERR_VERIFY_FAILED: EXIT.verify,
};

/** The exit status for an error thrown by a command. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof FileServerError) return byCode[error.code] ?? EXIT.failure;
  return EXIT.failure;
}
