/**
 * The receiving side of a transfer (server WRQ, client get): DATA in, ACK out, lockstep or an
 * RFC 7440 window.
 *
 * - Blocks are taken only in order. A block beyond a gap is dropped and answered, once per gap,
 *   with an ACK of the last block received in order, so the sender resends from the gap at once.
 * - A repeated block is re-acknowledged only when it is the last block already acknowledged (the
 *   sender lost that ACK) and that ACK went out at least half a timeout ago: a copy arriving
 *   sooner is a network duplicate or the echo of a sender without the Sorcerer's Apprentice fix,
 *   and answering it would start the very duplicate stream RFC 1123 warns about.
 * - The window is acknowledged when full, the final (short) block only after the sink has
 *   finished (an upload is committed before the peer hears it arrived), and then the receiver
 *   dallies to answer a repeated final block.
 * - Block numbers roll over past 65535 to 0, or to 1 when the rollover option says so; in lockstep
 *   either is accepted after 65535.
 * @module
 */
import { decodePacket, encodeAck, encodeError, OPCODE } from './codec.js';
import { TFTP_ERROR, TftpError, toWireError } from './errors.js';
import type { TransferParams } from './options.js';
import type { RetransmitTimeout } from './rto.js';
import {
  Alarm,
  absoluteBlock,
  localOutcome,
  newCounters,
  type SessionClock,
  type SessionCounters,
  type SessionIo,
  type SessionResult,
  wireBlock,
} from './session.js';
import type { BlockSink } from './sink.js';

/** Everything a {@link Receiver} runs with. */
export interface ReceiverConfig {
  readonly params: Pick<TransferParams, 'blksize' | 'windowsize' | 'rollover'>;
  /** The rollover value was negotiated; otherwise lockstep accepts 0 or 1 after 65535. */
  readonly rolloverNegotiated?: boolean | undefined;
  readonly sink: BlockSink;
  readonly io: SessionIo;
  readonly clock: SessionClock;
  readonly rto: RetransmitTimeout;
  /** Consecutive timer expiries tolerated before giving up. */
  readonly retries: number;
  /**
   * The packet to send and repeat until DATA 1 arrives: the server's OACK or ACK 0, or the
   * client's ACK 0 after an OACK. Absent when the caller feeds DATA 1 itself.
   */
  readonly opening?: Buffer | undefined;
  /** The opening packet is an OACK (an ERROR in reply to it is a refusal of the options). */
  readonly openingIsOack?: boolean | undefined;
  /** Refuse (ERROR 3) once more bytes than this arrive. */
  readonly maxBytes?: number | undefined;
  /** How long to stay after the final ACK to repeat it, in ms. */
  readonly dallyMs: number;
  readonly onDataStart?: (() => void) | undefined;
  /** Called after each block taken, with the total bytes taken. */
  readonly onProgress?: ((bytes: number) => void) | undefined;
  /** Called once, when the outcome is known (for success: after the sink finished). */
  readonly onEnd: (result: SessionResult) => void;
  /** Called once, when the receiver needs its socket no more (after dallying). */
  readonly onClose: () => void;
}

type ReceiverState = 'idle' | 'opening' | 'data' | 'finishing' | 'dally' | 'closed';

/** The DATA-receiving state machine. */
export class Receiver {
  /** Live counters. */
  readonly counters: SessionCounters = newCounters();
  readonly #c: ReceiverConfig;
  readonly #blksize: number;
  readonly #window: number;
  readonly #alarm: Alarm;
  #rollover: 0 | 1;
  #state: ReceiverState = 'idle';
  #ended = false;
  /** Next block expected. */
  #expected = 1;
  /** Blocks taken since the last ACK. */
  #sinceAck = 0;
  #gapAcked = false;
  #pausedAck = false;
  #expiries = 0;
  #ackSentAt = -1;
  /** When an ACK last went out (for the duplicate rule above). */
  #lastAckAt = Number.NEGATIVE_INFINITY;
  #last = -1;

  constructor(config: ReceiverConfig) {
    this.#c = config;
    this.#blksize = config.params.blksize;
    this.#window = Math.max(1, config.params.windowsize);
    this.#rollover = config.params.rollover;
    this.#alarm = new Alarm(config.clock, () => this.#onTimeout());
    config.sink.onError((error) => this.#fail('local-error', error));
  }

  /** Sends the opening packet (if any) and waits for DATA 1. */
  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'opening';
    if (this.#c.opening) {
      this.#ackSentAt = this.#c.clock.now();
      this.#c.io.send(this.#c.opening);
    }
    this.#alarm.set(this.#c.rto.timeoutMs);
  }

  /** The peer repeated its request: it never got the opening packet, so send it again now. */
  repeatOpening(): void {
    if (this.#state !== 'opening' || !this.#c.opening) return;
    this.#resendAck();
    this.#alarm.set(this.#c.rto.timeoutMs);
  }

  /** True once the outcome is known. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Handles one datagram from the peer (already checked to come from it). */
  receive(datagram: Buffer): void {
    if (this.#state === 'closed' || this.#state === 'idle') return;
    if (datagram.length >= 4 && datagram[0] === 0 && datagram[1] === OPCODE.DATA) {
      this.#onData(datagram.readUInt16BE(2), datagram.subarray(4));
      return;
    }
    let packet: ReturnType<typeof decodePacket>;
    try {
      packet = decodePacket(datagram);
    } catch {
      this.counters.duplicates++;
      return;
    }
    if (this.#ended) return;
    switch (packet.opcode) {
      case OPCODE.ERROR:
        this.#end({
          outcome:
            this.#state === 'opening' && this.#c.openingIsOack && packet.code === TFTP_ERROR.OPTION_REFUSED
              ? 'probe'
              : 'peer-error',
          error: new TftpError('ERR_TFTP', `Peer sent ERROR ${packet.code}: ${packet.message}`, {
            tftpCode: packet.code,
            details: { peerMessage: packet.message },
          }),
        });
        this.#close();
        return;
      case OPCODE.OACK:
        // Our ACK 0 of the OACK was lost; answer the repeat (RFC 2347 client side).
        this.counters.duplicates++;
        if (this.#state === 'opening' && this.#c.opening && !this.#c.openingIsOack) {
          this.counters.retransmits++;
          this.#c.io.send(this.#c.opening);
        }
        return;
      default:
        this.#protocolError(`unexpected opcode ${packet.opcode} while receiving`);
    }
  }

  /** Ends the transfer from this side, telling the peer with an ERROR packet. */
  abort(
    error: TftpError,
    wire: { code: number; message: string } = { code: 0, message: error.message },
  ): void {
    if (this.#state === 'closed') return;
    if (!this.#ended) {
      this.#c.io.send(encodeError(wire.code, wire.message));
      this.#end({ outcome: localOutcome(error), error });
    }
    this.#close();
  }

  #onData(wire: number, payload: Buffer): void {
    const state = this.#state;
    if (state === 'finishing') {
      this.counters.duplicates++; // the final ACK goes out once the sink has finished
      return;
    }
    if (state === 'dally') {
      this.counters.duplicates++;
      if (absoluteBlock(wire, this.#last, this.#rollover) === this.#last) {
        this.counters.retransmits++;
        this.#c.io.send(encodeAck(wireBlock(this.#last, this.#rollover)));
      }
      return;
    }
    if (this.#ended) return;
    const expected = this.#expected;
    let abs = absoluteBlock(wire, Math.max(0, expected - 0x8000), this.#rollover);
    if (abs !== expected && this.#acceptOtherRollover(wire)) abs = expected;
    if (abs === expected) {
      this.#take(abs, payload);
      return;
    }
    this.counters.duplicates++;
    if (abs >= 0 && abs < expected) {
      // The sender lost the ACK of its last block: repeat that ACK, and only that one.
      if (
        abs === expected - 1 &&
        this.#sinceAck === 0 &&
        !this.#pausedAck &&
        this.#c.clock.now() - this.#lastAckAt >= this.#c.rto.timeoutMs / 2
      ) {
        this.#resendAck();
      }
      return;
    }
    if (abs > expected && abs < expected + this.#window && !this.#gapAcked) {
      this.#gapAcked = true;
      this.#sendAck(expected - 1);
    }
  }

  /** After 65535, lockstep transfers accept 0 or 1 whatever was negotiated (RFC 1350 is silent). */
  #acceptOtherRollover(wire: number): boolean {
    if (this.#c.rolloverNegotiated || this.#window !== 1) return false;
    const expected = this.#expected;
    if (expected <= 0xffff || wireBlock(expected - 1, this.#rollover) !== 0xffff) return false;
    const other: 0 | 1 = this.#rollover === 0 ? 1 : 0;
    if (wire !== other) return false;
    this.#rollover = other;
    return true;
  }

  #take(abs: number, payload: Buffer): void {
    const c = this.#c;
    if (payload.length > this.#blksize) {
      this.#protocolError(`DATA block of ${payload.length} bytes exceeds blksize ${this.#blksize}`);
      return;
    }
    if (this.#state === 'opening') {
      this.#state = 'data';
      c.onDataStart?.();
    }
    if (this.#ackSentAt >= 0) {
      c.rto.sample(c.clock.now() - this.#ackSentAt);
      this.#ackSentAt = -1;
    }
    this.#expiries = 0;
    this.#expected = abs + 1;
    this.#sinceAck++;
    this.#gapAcked = false;
    const counters = this.counters;
    counters.blocks++;
    counters.bytes += payload.length;
    if (c.maxBytes !== undefined && counters.bytes > c.maxBytes) {
      const error = new TftpError('ERR_TFTP', `Upload exceeds the ${c.maxBytes}-byte limit`, {
        tftpCode: TFTP_ERROR.DISK_FULL,
      });
      this.abort(error, { code: TFTP_ERROR.DISK_FULL, message: error.message });
      return;
    }
    const last = payload.length < this.#blksize;
    const windowFull = !last && this.#sinceAck >= this.#window;
    // With room in the sink, acknowledge first: the sender's next block is on its way while the
    // sink takes this one. Only the final ACK says "stored".
    const ackedFirst = windowFull && c.sink.ready;
    if (ackedFirst) this.#sendAck(abs);
    if (payload.length > 0) c.sink.write(payload);
    c.onProgress?.(counters.bytes);
    if (this.#ended || ackedFirst) return; // #ended: the sink failed synchronously
    if (last) {
      this.#finishing(abs);
    } else if (windowFull) {
      // Backpressure: acknowledge once the sink has room, which paces the sender.
      this.#pausedAck = true;
      this.#alarm.clear();
      c.sink.whenDrained(() => {
        this.#pausedAck = false;
        if (!this.#ended && this.#state === 'data') this.#sendAck(this.#expected - 1);
      });
    } else {
      this.#alarm.set(c.rto.timeoutMs);
    }
  }

  #finishing(last: number): void {
    this.#state = 'finishing';
    this.#last = last;
    this.#alarm.clear();
    this.#c.sink.end().then(
      () => {
        if (this.#ended) return;
        this.#c.io.send(encodeAck(wireBlock(last, this.#rollover)));
        this.#end({ outcome: 'ok' });
        this.#state = 'dally';
        this.#alarm.set(this.#c.dallyMs);
      },
      (error: unknown) => this.#fail('local-error', error),
    );
  }

  #sendAck(abs: number): void {
    this.#sinceAck = 0;
    this.#ackSentAt = this.#lastAckAt = this.#c.clock.now();
    this.#c.io.send(encodeAck(wireBlock(abs, this.#rollover)));
    this.#alarm.set(this.#c.rto.timeoutMs);
  }

  #resendAck(): void {
    this.counters.retransmits++;
    this.#ackSentAt = -1; // Karn: the next DATA cannot be timed against a repeated ACK
    this.#lastAckAt = this.#c.clock.now();
    const abs = this.#expected - 1;
    this.#c.io.send(
      abs === 0 && this.#c.opening ? this.#c.opening : encodeAck(wireBlock(abs, this.#rollover)),
    );
  }

  #onTimeout(): void {
    if (this.#state === 'dally') {
      this.#close();
      return;
    }
    if (this.#ended || this.#state === 'finishing') return;
    this.counters.timeouts++;
    if (++this.#expiries > this.#c.retries) {
      this.#fail(
        'timeout',
        new TftpError('ERR_TFTP_TIMEOUT', `No DATA from the peer after ${this.#c.retries} retransmissions`),
      );
      return;
    }
    this.#c.rto.backoff();
    // The client that fed DATA 1 itself has nothing to repeat before block 1: its request is gone.
    if (this.#expected > 1 || this.#c.opening) {
      this.#sinceAck = 0;
      this.#resendAck();
    }
    this.#alarm.set(this.#c.rto.timeoutMs);
  }

  #protocolError(reason: string): void {
    this.#c.io.send(encodeError(TFTP_ERROR.ILLEGAL_OPERATION, reason));
    this.#end({
      outcome: 'protocol-error',
      error: new TftpError('ERR_TFTP_PROTOCOL', `Peer broke the protocol: ${reason}`, {
        tftpCode: TFTP_ERROR.ILLEGAL_OPERATION,
      }),
    });
    this.#close();
  }

  /** Fails from this side: tells the peer what went wrong (if it is listening) and stops. */
  #fail(outcome: 'timeout' | 'local-error', cause: unknown): void {
    if (this.#ended) return;
    const wire = toWireError(cause);
    if (outcome !== 'timeout') this.#c.io.send(encodeError(wire.code, wire.message));
    const error =
      cause instanceof TftpError
        ? cause
        : new TftpError('ERR_TFTP', `Storing the file failed: ${(cause as Error)?.message ?? cause}`, {
            tftpCode: wire.code,
            cause,
          });
    this.#end({ outcome, error });
    this.#close();
  }

  #end(result: SessionResult): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#c.onEnd(result);
  }

  /** Stops at once, dallying included, without a packet; a running transfer counts as aborted. */
  close(): void {
    this.#end({
      outcome: 'aborted',
      error: new TftpError('ERR_TRANSFER_ABORTED', 'Transfer closed before it finished'),
    });
    this.#close();
  }

  #close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#alarm.clear();
    this.#c.onClose();
  }
}
