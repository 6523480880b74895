/**
 * What the per-transfer state machines ({@link Sender}, {@link Receiver}) share: the injected
 * clock and I/O that make them testable without sockets, block-number arithmetic across the
 * 65535 rollover, counters, and how a transfer ends.
 * @module
 */
import type { TftpError } from './errors.js';

/** Time source and timers; tests pass a fake one. */
export interface SessionClock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Runs `fn` on the next turn of the event loop, after pending I/O. */
  defer(fn: () => void): void;
}

/** The real clock; timers are unref'd so that they never keep a process alive on their own. */
export const systemClock: SessionClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  defer: (fn) => {
    setImmediate(fn);
  },
};

/** How a state machine talks to its peer. */
export interface SessionIo {
  /** Sends `packet[0, length)` to the peer. The buffer must stay untouched until {@link SessionIo.pending} is 0. */
  send(packet: Buffer, length?: number): void;
  /** Sends not yet handed to the kernel (they still read from the buffers given to send()). */
  readonly pending: number;
  /** Calls `fn` once pending is 0 (at once if it already is). */
  whenSent(fn: () => void): void;
  /** Holds the following sends until uncork(), to hand the kernel a window at once. Optional. */
  cork?(): void;
  /** Sends what cork() held, in order. */
  uncork?(): void;
  /**
   * Sends `packet[0, length)` the moment the peer's ACK of wire block `ackBlock` arrives, ahead
   * of everything else (the native path answers it before JavaScript runs); that ACK then comes
   * with `answered` true. One-shot; false if nothing was armed. Optional.
   */
  armReply?(ackBlock: number, packet: Buffer, length: number): boolean;
  /** Withdraws the armed reply. */
  disarmReply?(): void;
}

/** How a transfer ended. */
export type TftpOutcome =
  /** The file arrived whole. */
  | 'ok'
  /** The peer stopped answering. */
  | 'timeout'
  /** The peer sent an ERROR packet. */
  | 'peer-error'
  /** The peer answered our OACK with ERROR 8: a size probe (UEFI) or a refusal of the options. */
  | 'probe'
  /** The peer broke the protocol. */
  | 'protocol-error'
  /** This side failed: file not found, handler error, disk full, refused request... */
  | 'local-error'
  /** Stopped from this side (server stop, AbortSignal). */
  | 'aborted';

/** The outcome of a transfer ended from this side with `error`. */
export function localOutcome(error: TftpError): TftpOutcome {
  if (error.code === 'ERR_TRANSFER_ABORTED') return 'aborted';
  return error.code === 'ERR_TFTP_TIMEOUT' ? 'timeout' : 'local-error';
}

/** The end of a state machine. */
export interface SessionResult {
  readonly outcome: TftpOutcome;
  /** Set unless outcome is 'ok'. */
  readonly error?: TftpError;
}

/** Counters a state machine keeps while it runs. */
export interface SessionCounters {
  /** DATA payload bytes moved (in netascii mode, the converted wire form). */
  bytes: number;
  /** DATA blocks moved (each counted once). */
  blocks: number;
  /** Packets sent again: DATA blocks resent, ACKs or OACKs repeated on a timeout. */
  retransmits: number;
  /** Retransmission timer expiries. */
  timeouts: number;
  /** Duplicate or stale packets received and ignored. */
  duplicates: number;
}

/** Fresh zeroed counters. */
export function newCounters(): SessionCounters {
  return { bytes: 0, blocks: 0, retransmits: 0, timeouts: 0, duplicates: 0 };
}

/** The wire number of absolute block `abs` when the counter rolls over to `rollover` after 65535. */
export function wireBlock(abs: number, rollover: 0 | 1): number {
  if (abs <= 0xffff) return abs;
  return rollover === 0 ? abs % 0x10000 : ((abs - 1) % 0xffff) + 1;
}

/**
 * The absolute block number nearest at or after `from` whose wire number is `wire`, or -1 if no
 * block at or after `from` within one cycle has it (wire 0 when rolling over to 1).
 */
export function absoluteBlock(wire: number, from: number, rollover: 0 | 1): number {
  if (from <= 0) {
    if (wire === 0) return 0;
    from = 1;
  }
  const start = wireBlock(from, rollover);
  if (rollover === 0) return from + ((wire - start) & 0xffff);
  if (wire === 0) return -1;
  return from + ((wire - start + 0xffff) % 0xffff);
}

/**
 * One re-armable deadline on top of a single timer: moving the deadline later costs no timer
 * call (the timer wakes, sees the new deadline and sleeps again), which keeps the per-packet cost
 * of "restart the retransmission timer" at one subtraction.
 */
export class Alarm {
  readonly #clock: SessionClock;
  readonly #fire: () => void;
  #deadline = -1;
  #handle: unknown;
  #handleAt = -1;

  constructor(clock: SessionClock, fire: () => void) {
    this.#clock = clock;
    this.#fire = fire;
  }

  /** Fires once, `ms` from now (replacing any earlier setting). */
  set(ms: number): void {
    const deadline = this.#clock.now() + ms;
    this.#deadline = deadline;
    if (this.#handle !== undefined && this.#handleAt <= deadline) return;
    this.#schedule(ms);
  }

  /** True when set and not fired yet. */
  get armed(): boolean {
    return this.#deadline >= 0;
  }

  clear(): void {
    this.#deadline = -1;
    if (this.#handle !== undefined) {
      this.#clock.clearTimeout(this.#handle);
      this.#handle = undefined;
    }
  }

  #schedule(ms: number): void {
    if (this.#handle !== undefined) this.#clock.clearTimeout(this.#handle);
    this.#handleAt = this.#clock.now() + ms;
    this.#handle = this.#clock.setTimeout(this.#wake, Math.max(0, ms));
  }

  #wake = (): void => {
    this.#handle = undefined;
    if (this.#deadline < 0) return;
    const left = this.#deadline - this.#clock.now();
    if (left > 0.5) {
      this.#schedule(left);
      return;
    }
    this.#deadline = -1;
    this.#fire();
  };
}
