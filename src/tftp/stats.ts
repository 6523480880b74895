/**
 * What the engine reports: one {@link TftpTransferStats} per transfer (server and client alike)
 * and the server's running {@link TftpServerCounters}, in the spirit of fbtftp's session and
 * server callbacks.
 * @module
 */
import type { TftpError } from './errors.js';
import type { TftpOutcome } from './session.js';
import type { Endpoint } from './transport.js';

export type { TftpOutcome } from './session.js';

/** A transfer whose data has started to flow (the server's `'transferstart'` event). */
export interface TftpTransferInfo {
  /** Sequence number of the transfer within its server or client. */
  readonly id: number;
  /** `read`: data went to the requester (RRQ); `write`: data came from it (WRQ). */
  readonly direction: 'read' | 'write';
  /** The file name as requested. */
  readonly filename: string;
  /** Transfer mode (netascii converts line ends). */
  readonly mode: 'octet' | 'netascii';
  /** The other side: the client (on a server) or the server's transfer port (on a client). */
  readonly peer: Endpoint;
  /** This side's transfer socket (undefined if the transfer never got one). */
  readonly local: Endpoint | undefined;
  /** Options as the requester asked for them, names lower-case. */
  readonly requestedOptions: Readonly<Record<string, string>>;
  /** Options agreed in the OACK, names lower-case (empty without an OACK). */
  readonly negotiatedOptions: Readonly<Record<string, string>>;
  /** Block size used. */
  readonly blksize: number;
  /** Window size used. */
  readonly windowsize: number;
}

/** One finished transfer (successful or not): the server's `'transfer'` event and the client's result. */
export interface TftpTransferStats extends TftpTransferInfo {
  /** DATA payload bytes moved (the file size in octet mode; the converted text in netascii mode). */
  readonly bytes: number;
  /** DATA blocks moved. */
  readonly blocks: number;
  /** Packets sent again (DATA on the sending side, ACK/OACK on the receiving side). */
  readonly retransmits: number;
  /** Retransmission timer expiries. */
  readonly timeouts: number;
  /** Duplicate, stale or out-of-order packets ignored. */
  readonly duplicates: number;
  /** Datagrams from strangers (answered with ERROR 5). */
  readonly strangers: number;
  /** Smoothed round-trip time, when measured. */
  readonly rttMs: number | undefined;
  /** When the request arrived (server) or was sent (client). */
  readonly startedAt: Date;
  /** From the request to the end of the transfer, in milliseconds. */
  readonly durationMs: number;
  /** How it ended: `ok`, or the kind of failure. */
  readonly outcome: TftpOutcome;
  /** Why it failed, unless outcome is 'ok'. */
  readonly error?: TftpError;
}

/** A server's counters since it started. */
export interface TftpServerCounters {
  /** Datagrams received on the listening port. */
  requests: number;
  /** Requests refused before a transfer began (limits, bad mode, read-only, file errors...). */
  refused: number;
  /** Malformed datagrams (listening port and transfers). */
  malformed: number;
  /** Retransmitted requests ignored because their transfer is running. */
  duplicateRequests: number;
  /** Transfers running now (dallying ones included). */
  sessionsActive: number;
  /** Transfers started. */
  sessionsStarted: number;
  /** Transfers that ended with outcome 'ok'. */
  transfersOk: number;
  /** Transfers that ended otherwise (probes excluded). */
  transfersFailed: number;
  /** Size probes: the peer answered our OACK with ERROR 8 (UEFI asks for tsize this way). */
  probes: number;
  /** File bytes sent to peers. */
  bytesSent: number;
  /** File bytes received from peers. */
  bytesReceived: number;
  /** Packets sent again. */
  retransmits: number;
  /** Retransmission timer expiries. */
  timeouts: number;
  /** Datagrams from strangers on transfer ports. */
  strangers: number;
}

/** Zeroed counters. @internal */
export function newServerCounters(): TftpServerCounters {
  return {
    requests: 0,
    refused: 0,
    malformed: 0,
    duplicateRequests: 0,
    sessionsActive: 0,
    sessionsStarted: 0,
    transfersOk: 0,
    transfersFailed: 0,
    probes: 0,
    bytesSent: 0,
    bytesReceived: 0,
    retransmits: 0,
    timeouts: 0,
    strangers: 0,
  };
}
