/**
 * The transfer event every server emits, whatever its protocol, and the tracker backends report
 * through.
 * @module
 */
import { EventEmitter, once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';

/** A protocol a {@link FileServer} can serve. */
export type Protocol = 'tftp' | 'ftp' | 'http' | 'https' | 'scp' | 'sftp';

/** The protocols, in documentation order. */
export const PROTOCOLS: readonly Protocol[] = ['tftp', 'ftp', 'http', 'https', 'scp', 'sftp'];

/** The well-known port of each protocol (what `port: 'standard'` binds, and URLs leave out). */
export const STANDARD_PORTS: Readonly<Record<Protocol, number>> = {
  tftp: 69,
  ftp: 21,
  http: 80,
  https: 443,
  scp: 22,
  sftp: 22,
};

/**
 * `download`: the file went from the server to the peer (a device fetching an image).
 * `upload`: the file went from the peer to the server (a device pushing a config or core file).
 */
export type TransferDirection = 'download' | 'upload';

/** A network peer. */
export interface Peer {
  /** The peer's IP address as the socket reports it (IPv6 without brackets; may be `''` once the socket closed). */
  readonly address: string;
  /** The peer's source port (for FTP, that of its control connection). */
  readonly port: number;
}

/** What a server reports when a transfer starts. */
export interface TransferStart {
  /** The protocol the transfer used (one SSH server reports `scp` and `sftp` apart). */
  readonly protocol: Protocol;
  /** The client that moved the file, e.g. the device. */
  readonly peer: Peer;
  /** The file's path relative to the root, with `/` separators and no leading slash. */
  readonly path: string;
  /** As seen from the server: `download` when the peer fetched the file, `upload` when it sent one. */
  readonly direction: TransferDirection;
}

/** One finished transfer, successful or not. */
export interface TransferEvent extends TransferStart {
  /** Name of the server in the testbed, when it has one. */
  readonly server: string | undefined;
  /** Payload bytes moved (file bytes, not protocol overhead). */
  readonly bytes: number;
  /** Wall-clock time the server accepted the request. */
  readonly startedAt: Date;
  /** Milliseconds from `startedAt` to the end (success or failure), measured on a monotonic clock. */
  readonly durationMs: number;
  /** True when the file arrived whole (and, for uploads, now sits under its final name). */
  readonly ok: boolean;
  /** Why the transfer failed, when it did. */
  readonly error?: Error;
  /** Protocol facts, e.g. TFTP's negotiated options and retransmit count. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Handle a backend holds for one running transfer. */
export interface ActiveTransfer {
  /** Count payload bytes as they move. */
  add(bytes: number): void;
  /** Bytes counted so far. */
  readonly bytes: number;
  /** End the transfer once; later calls are ignored. Pass an error when it failed. */
  end(error?: Error, details?: Record<string, unknown>): void;
}

/**
 * Counts running transfers, reports finished ones, and lets `stop()` wait for running ones.
 * @internal
 */
export class TransferTracker {
  readonly #report: (event: TransferEvent) => void;
  readonly #server: string | undefined;
  readonly #idle = new EventEmitter();
  #active = 0;

  constructor(server: string | undefined, report: (event: TransferEvent) => void) {
    this.#server = server;
    this.#report = report;
  }

  /** Transfers currently running. */
  get active(): number {
    return this.#active;
  }

  begin(start: TransferStart): ActiveTransfer {
    const startedAt = new Date();
    const t0 = performance.now();
    let bytes = 0;
    let ended = false;
    this.#active++;
    return {
      add: (n) => {
        bytes += n;
      },
      get bytes() {
        return bytes;
      },
      end: (error, details) => {
        if (ended) return;
        ended = true;
        this.#active--;
        const event: TransferEvent = {
          ...start,
          server: this.#server,
          bytes,
          startedAt,
          durationMs: performance.now() - t0,
          ok: error === undefined,
          ...(error === undefined ? {} : { error }),
          ...(details === undefined ? {} : { details }),
        };
        try {
          this.#report(event);
        } finally {
          if (this.#active === 0) this.#idle.emit('idle');
        }
      },
    };
  }

  /** Resolves true once no transfer runs, or false after `graceMs`. */
  async drain(graceMs: number): Promise<boolean> {
    if (this.#active === 0) return true;
    if (graceMs <= 0) return false;
    const ac = new AbortController();
    try {
      return await Promise.race([
        once(this.#idle, 'idle', { signal: ac.signal }).then(() => true),
        once(this.#idle, 'cut', { signal: ac.signal }).then(() => false),
        delay(graceMs, false, { signal: ac.signal }),
      ]);
    } finally {
      ac.abort();
    }
  }

  /** Ends every drain() waiting now, as if its grace period had run out (stop's signal aborted). */
  cutGrace(): void {
    this.#idle.emit('cut');
  }
}
