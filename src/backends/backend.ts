/**
 * The seam between {@link FileServer} and one protocol. A backend gets everything already decided
 * (bind address, port, root, credentials) and only listens, serves and closes. Adding a protocol
 * is one file that exports a {@link Backend}.
 * @internal
 * @module
 */
import type { Credentials } from '../credentials.js';
import type { Logger } from '../log.js';
import type { Protocol, TransferTracker } from '../transfer.js';

/** What a backend is started with. @internal */
export interface BackendContext {
  readonly protocol: Protocol;
  /** Server name in the testbed, if any (for log lines only). */
  readonly name: string | undefined;
  /** The local IP to bind (IPv6 link-local with `%scope`). Never a wildcard unless the user asked. */
  readonly bindAddress: string;
  /** Port to bind; 0 lets the kernel pick a free one. */
  readonly port: number;
  /** Address devices are told to use (differs from bindAddress behind NAT). */
  readonly advertisedAddress: string;
  /** Absolute realpath of the served folder. */
  readonly root: string;
  /** Refuse every write. */
  readonly readOnly: boolean;
  /** Replace existing files on upload. */
  readonly overwrite: boolean;
  /** Largest accepted upload in bytes. */
  readonly maxFileSize: number | undefined;
  /** Credentials every request must present, or undefined when the protocol/options have no auth. */
  readonly credentials: Credentials | undefined;
  /** Protocol-specific options, as the user passed them under the protocol's key. */
  readonly options: Readonly<Record<string, unknown>>;
  /** Report transfers here; stop() waits on it for the grace period. */
  readonly transfers: TransferTracker;
  readonly log: Logger;
  /** Aborts a start in progress. */
  readonly signal: AbortSignal;
}

/** A listening backend. @internal */
export interface RunningBackend {
  /** The port actually bound. */
  readonly port: number;
  /** Extra fields for the testbed entry and the info (fingerprints, certificates, ...). */
  readonly extra?: Readonly<Record<string, unknown>>;
  /**
   * Stops accepting, lets running transfers finish for up to `graceMs`, then aborts the rest and
   * releases every socket, timer and file handle. Must not throw for an already-closed backend.
   */
  close(options: { graceMs: number }): Promise<void>;
}

/** One protocol implementation. @internal */
export interface Backend {
  /** Whether start() binds anything (false for information-only SCP). */
  readonly listens: boolean;
  start(context: BackendContext): Promise<RunningBackend>;
}
