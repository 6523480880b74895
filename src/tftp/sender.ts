/**
 * The sending side of a transfer (server RRQ, client put): DATA out, ACK in, RFC 1350 lockstep
 * or an RFC 7440 window.
 *
 * - Blocks of the window, and the one after it (read while the window is out, so that an ACK is
 *   answered without a read in the way), live in reused slot buffers with their header written in
 *   place, so a retransmission never re-reads (or re-converts) the source and sending allocates
 *   nothing.
 * - Sorcerer's Apprentice (RFC 1123): a repeated ACK never triggers a resend in lockstep; in a
 *   window, an ACK of the block before the window (the peer saw a gap at its start) triggers one
 *   immediate resend per window position, and an ACK inside the window resends from the block
 *   after it at once (RFC 7440 gap recovery). Everything else waits for the timer.
 * - The timer is an RTT-adaptive RTO ({@link RetransmitTimeout}), sampled only from blocks sent
 *   once (Karn), backed off on every expiry, with a budget of consecutive expiries.
 * - OACK: repeated at once when the peer repeats its request (it never got the OACK), but on this
 *   side's timer only after the client's own timer had its chance to repeat a lost ACK 0
 *   (`patienceMs`): atftp aborts a download on a second OACK.
 * - Patience: in a window, after the third timer resend of the same window position, the wait
 *   before the next one is at least `patienceMs`. atftp ignores blocks it already has without
 *   acknowledging them and repeats a lost ACK only when its own 5 s timer runs out, which every
 *   packet we send restarts: a backoff that stayed under 5 s stalled it for 15 s or more, or
 *   until the retry budget ran out. A receiver that answers resends rarely leaves three in a row
 *   unanswered, even on a lossy link; lockstep receivers answer every repeated block, so lockstep
 *   never waits.
 * - Tail loss probe: once a window is out, if no ACK comes within a few round trips (well below
 *   the RTO's floor), the window is resent from its first block, once per window position. A lost
 *   tail gives the receiver no gap to report, and many receivers (atftp) ignore blocks beyond a
 *   gap until their own timeout: this turns a 50+ ms stall into about a round trip.
 * - Pacing: a window goes out in bursts with a turn of the event loop between them. The burst
 *   starts at the whole window, halves once per loss episode and grows back by one every four
 *   clean windows, so a receiver with a small socket buffer (atftp, U-Boot) stops losing most of
 *   every window, while a fast receiver gets whole windows at once. The window itself (what the
 *   peer acknowledges) never changes.
 * - Armed replies: in lockstep the block after the one in flight is read ahead and armed on the
 *   socket (SessionIo.armReply), so that the native path sends it the moment its ACK arrives; the
 *   engine then only accounts for it. Without the native path it is sent from here as before.
 * @module
 */
import { decodePacket, encodeError, OPCODE, writeDataHeader } from './codec.js';
import { TFTP_ERROR, TftpError } from './errors.js';
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
import type { BlockSource } from './source.js';

/** Everything a {@link Sender} runs with. */
export interface SenderConfig {
  readonly params: Pick<TransferParams, 'blksize' | 'windowsize' | 'rollover'>;
  readonly source: BlockSource;
  readonly io: SessionIo;
  readonly clock: SessionClock;
  readonly rto: RetransmitTimeout;
  /** Consecutive timer expiries tolerated before giving up. */
  readonly retries: number;
  /** An OACK to send (and repeat) until the peer's ACK 0; without one, DATA 1 goes out at once. */
  readonly oack?: Buffer | undefined;
  /**
   * How long the peer's own retransmission timer may take, in ms (default: 0, the RTO decides).
   * The least wait before this side repeats the OACK on its own: a lost ACK 0 is the client's to
   * repeat, and atftp aborts on a second OACK ("unexpected OACK"); {@link Sender.repeatOpening}
   * answers a client that lost the OACK itself and repeats its request. Also the least wait
   * between resends of a window that went unanswered three times (see the module notes).
   */
  readonly patienceMs?: number | undefined;
  /** Called when DATA starts to flow (at once without an OACK, else on ACK 0). */
  readonly onDataStart?: (() => void) | undefined;
  /** Called after each block the peer acknowledged, with the total bytes acknowledged. */
  readonly onProgress?: ((bytes: number) => void) | undefined;
  /** Called once, when the transfer is over. */
  readonly onEnd: (result: SessionResult) => void;
}

type SenderState = 'idle' | 'oack' | 'data' | 'done';

/** Timer resends of one window position before waiting for the peer's own timer (see Patience). */
const PATIENT_AFTER_EXPIRIES = 3;

/** The DATA-sending state machine. */
export class Sender {
  /** Live counters. */
  readonly counters: SessionCounters = newCounters();
  readonly #c: SenderConfig;
  readonly #blksize: number;
  readonly #window: number;
  /** The window's blocks plus the one after it, read ahead (see #pump). */
  readonly #slots: Buffer[];
  readonly #lengths: Int32Array;
  readonly #alarm: Alarm;
  readonly #probe: Alarm;
  #state: SenderState = 'idle';
  /** Oldest block not yet acknowledged. */
  #base = 1;
  /** Next block to put on the wire. */
  #next = 1;
  /** Next block to read into a slot. */
  #filled = 1;
  /** Highest block ever sent (anything at or below it is a retransmission). */
  #highestSent = 0;
  /** The final (short) block, once the source has ended. */
  #last = Number.POSITIVE_INFINITY;
  #reading = false;
  #waitingForSends = false;
  #expiries = 0;
  /** Window position at which the one immediate resend for "ACK of base-1" was spent. */
  #fastResendAt = 0;
  /** Window position at which the one tail loss probe was spent. */
  #probedAt = 0;
  /** Most blocks sent in one turn of the event loop (AIMD, see the module notes). */
  #burst: number;
  /** Blocks up to here were in flight when the last loss was seen: one reduction per episode. */
  #lossEpochEnd = 0;
  /** Blocks acknowledged since the last loss or burst increase. */
  #cleanBlocks = 0;
  /** A paced continuation of #pump is scheduled. */
  #paced = false;
  /** Block whose round trip is being timed, and when it went out. */
  #sampleBlock = -1;
  #sampleSentAt = 0;
  #ackedBytes = 0;
  #oackSentAt = 0;
  #oackRepeated = false;
  /** Lockstep: the block armed to leave when the block in flight is acknowledged (see #armNext). */
  #armedBlock = -1;
  /** The armed block went out with the ACK being handled: #sendBlock only accounts for it. */
  #answeredBlock = -1;

  constructor(config: SenderConfig) {
    this.#c = config;
    this.#blksize = config.params.blksize;
    this.#window = Math.max(1, config.params.windowsize);
    this.#slots = Array.from({ length: this.#window + 1 }, () => Buffer.allocUnsafeSlow(4 + this.#blksize));
    this.#lengths = new Int32Array(this.#window + 1);
    this.#burst = this.#window;
    this.#alarm = new Alarm(config.clock, () => this.#onTimeout());
    this.#probe = new Alarm(config.clock, () => this.#onProbe());
  }

  /** Sends the OACK or the first window. */
  start(): void {
    if (this.#state !== 'idle') return;
    if (this.#c.oack) {
      this.#state = 'oack';
      this.#oackSentAt = this.#c.clock.now();
      this.#c.io.send(this.#c.oack);
      this.#armOackTimer();
    } else {
      this.#startData();
    }
  }

  /** The peer repeated its request: it never got the OACK, so send it again now. */
  repeatOpening(): void {
    if (this.#state !== 'oack') return;
    this.#resendOack();
  }

  #resendOack(): void {
    this.#oackRepeated = true; // Karn: the ACK 0 can no longer be timed
    this.counters.retransmits++;
    this.#c.io.send(this.#c.oack!);
    this.#armOackTimer();
  }

  #armOackTimer(): void {
    this.#alarm.set(this.#patientTimeoutMs());
  }

  #patientTimeoutMs(): number {
    return Math.max(this.#c.rto.timeoutMs, this.#c.patienceMs ?? 0);
  }

  /** Current retransmission timeout in ms. */
  get rtoMs(): number {
    return this.#c.rto.timeoutMs;
  }

  /**
   * Handles one datagram from the peer (already checked to come from it). `answered`: it is the
   * ACK the armed block waited for, and that block has already gone out.
   */
  receive(datagram: Buffer, answered = false): void {
    if (this.#state === 'done') return;
    // Fast path: an ACK is 4 bytes, opcode 4.
    if (datagram.length >= 4 && datagram[0] === 0 && datagram[1] === OPCODE.ACK) {
      if (answered) this.#answeredBlock = this.#armedBlock;
      this.#onAck(datagram.readUInt16BE(2));
      this.#answeredBlock = -1;
      return;
    }
    let packet: ReturnType<typeof decodePacket>;
    try {
      packet = decodePacket(datagram);
    } catch {
      this.counters.duplicates++; // garbled: ignore, the timer recovers
      return;
    }
    if (packet.opcode === OPCODE.ERROR) {
      this.#finish({
        outcome: this.#state === 'oack' && packet.code === TFTP_ERROR.OPTION_REFUSED ? 'probe' : 'peer-error',
        error: new TftpError('ERR_TFTP', `Peer sent ERROR ${packet.code}: ${packet.message}`, {
          tftpCode: packet.code,
          details: { peerMessage: packet.message },
        }),
      });
      return;
    }
    if (packet.opcode === OPCODE.OACK) {
      this.counters.duplicates++; // the peer repeated its OACK (our DATA 1 was lost): the timer resends
      return;
    }
    this.#protocolError(
      `unexpected ${packet.opcode === OPCODE.DATA ? 'DATA' : `opcode ${packet.opcode}`} while sending`,
    );
  }

  /** Ends the transfer from this side, telling the peer with an ERROR packet. */
  abort(
    error: TftpError,
    wire: { code: number; message: string } = { code: 0, message: error.message },
  ): void {
    if (this.#state === 'done') return;
    this.#c.io.send(encodeError(wire.code, wire.message));
    this.#finish({ outcome: localOutcome(error), error });
  }

  #onAck(wire: number): void {
    const c = this.#c;
    if (this.#state === 'oack') {
      if (wire !== 0) {
        this.counters.duplicates++; // stale: keep waiting for ACK 0 (tftp-hpa does the same)
        return;
      }
      if (!this.#oackRepeated) c.rto.sample(c.clock.now() - this.#oackSentAt);
      this.#startData();
      return;
    }
    if (this.#state !== 'data') return;
    const rollover = c.params.rollover;
    const abs = absoluteBlock(wire, this.#base - 1, rollover);
    if (abs < 0 || abs > this.#highestSent) {
      this.counters.duplicates++; // acknowledges nothing we sent: stale or bogus
      return;
    }
    if (abs === this.#base - 1) {
      this.counters.duplicates++;
      // Lockstep: a repeated ACK is the Sorcerer's Apprentice trigger; never resend on it.
      // Window: the peer says block `base` is missing; resend once per window position.
      if (this.#window > 1 && this.#fastResendAt !== this.#base && this.#highestSent >= this.#base) {
        this.#fastResendAt = this.#base;
        this.#lost();
        this.#goBack();
      }
      return;
    }
    // abs acknowledges base..abs. Send what it allows first, account afterwards: in lockstep every
    // microsecond here is a microsecond of round trip.
    const acked = abs - this.#base + 1;
    for (let b = this.#base; b <= abs; b++) this.#ackedBytes += this.#lengths[b % this.#slots.length]! - 4;
    const done = abs >= this.#last;
    // Blocks sent after `abs` that the peer does not acknowledge: it lost the one after `abs`.
    // (`abs` may lie beyond the resend position: the peer had more than we thought.)
    const gap = abs < this.#highestSent;
    const rtt =
      this.#sampleBlock !== -1 && abs >= this.#sampleBlock ? c.clock.now() - this.#sampleSentAt : -1;
    if (rtt >= 0) this.#sampleBlock = -1; // free for the next window's first send
    this.#base = abs + 1;
    this.#expiries = 0;
    if (this.#next < this.#base) this.#next = this.#base;
    if (!done) {
      if (gap) {
        // An ACK short of everything sent means the peer lost the block after it: resend from there
        // (and count that as this position's one immediate resend, should the ACK come again).
        this.#lost();
        this.#fastResendAt = this.#base;
        this.#goBack();
      } else {
        this.#pump();
      }
    }
    if (rtt >= 0) c.rto.sample(rtt);
    else c.rto.resetBackoff();
    this.counters.blocks += acked;
    this.counters.bytes = this.#ackedBytes;
    if (!gap) this.#grow(acked);
    c.onProgress?.(this.#ackedBytes);
    if (done) this.#finish({ outcome: 'ok' });
    else if (!gap) this.#armTimer();
  }

  /** Clean progress: one more block per burst every four clean windows (slow, so the burst stays
   * near what the receiver absorbs instead of overshooting it again at once). */
  #grow(acked: number): void {
    this.#cleanBlocks += acked;
    if (this.#cleanBlocks < 4 * this.#window) return;
    this.#cleanBlocks = 0;
    if (this.#burst < this.#window) this.#burst++;
  }

  /** A loss was detected: halve the burst, once per episode. */
  #lost(): void {
    this.#cleanBlocks = 0;
    if (this.#base <= this.#lossEpochEnd) return;
    this.#lossEpochEnd = this.#highestSent;
    this.#burst = Math.max(1, this.#burst >> 1);
  }

  #startData(): void {
    this.#state = 'data';
    this.#c.onDataStart?.();
    this.#pump();
  }

  /** Resends the window from its first block. */
  #goBack(): void {
    this.#next = this.#base;
    this.#sampleBlock = -1; // Karn: nothing in flight can be timed now
    this.#pump();
  }

  /** Reads blocks into free slots and sends whatever the window allows, a burst at a time. */
  #pump(): void {
    if (this.#state !== 'data') return;
    const end = this.#base + this.#window; // first block beyond the window
    let budget = this.#burst;
    const io = this.#c.io;
    io.cork?.();
    while (this.#next < end && this.#next <= this.#last) {
      if (budget-- === 0) {
        this.#pace();
        break;
      }
      if (this.#next === this.#filled) {
        if (!this.#fill()) break;
      }
      this.#sendBlock(this.#next++);
    }
    io.uncork?.();
    // With the window out, read the block after it now: when the ACK comes, that block leaves
    // without a read (a copy of up to 64 KiB) in the way. In lockstep that is every round trip.
    if (this.#next === end && this.#filled === end && end <= this.#last) this.#fill();
    this.#armNext(end);
    this.#armTimer();
  }

  /**
   * Lockstep: with block `next` read ahead, have it sent the moment the block in flight is
   * acknowledged, before any JavaScript runs (SessionIo.armReply; the native path does it). Then
   * the round trip no longer includes this side's event loop.
   */
  #armNext(next: number): void {
    const io = this.#c.io;
    if (this.#window !== 1 || !io.armReply || this.#armedBlock === next) return;
    if (this.#next !== next || this.#filled <= next || next > this.#last || this.#highestSent !== this.#base)
      return;
    const index = next % this.#slots.length;
    const ack = wireBlock(this.#base, this.#c.params.rollover);
    if (io.armReply(ack, this.#slots[index]!, this.#lengths[index]!)) this.#armedBlock = next;
  }

  /** Continues the window on the next turn of the event loop, so the receiver can drain. */
  #pace(): void {
    if (this.#paced) return;
    this.#paced = true;
    this.#c.clock.defer(() => {
      this.#paced = false;
      this.#pump();
    });
  }

  #armTimer(): void {
    // Nothing in flight (waiting for the source): no timer, the idle timeout covers a stall.
    if (this.#highestSent < this.#base) {
      this.#alarm.clear();
      this.#probe.clear();
      return;
    }
    const patient = this.#window > 1 && this.#expiries >= PATIENT_AFTER_EXPIRIES;
    this.#alarm.set(patient ? this.#patientTimeoutMs() : this.#c.rto.timeoutMs);
    const tailSent = this.#next > this.#last || this.#next >= this.#base + this.#window;
    const probeMs = this.#c.rto.probeTimeoutMs;
    if (tailSent && probeMs !== undefined && this.#probedAt !== this.#base) this.#probe.set(probeMs);
    else this.#probe.clear();
  }

  #onProbe(): void {
    if (this.#state !== 'data' || this.#probedAt === this.#base || this.#highestSent < this.#base) return;
    this.#probedAt = this.#base;
    this.#lost();
    this.#goBack();
  }

  /** Reads block #filled into its slot; false when it has to wait (read or pending send). */
  #fill(): boolean {
    if (this.#reading || this.#waitingForSends) return false;
    const block = this.#filled;
    const slot = this.#slots[block % this.#slots.length]!;
    // The slot last held an acknowledged block, but a queued send may still read it.
    if (block > this.#slots.length && this.#c.io.pending > 0) {
      this.#waitingForSends = true;
      this.#c.io.whenSent(() => {
        this.#waitingForSends = false;
        this.#pump();
      });
      return false;
    }
    let result: number | Promise<number>;
    try {
      result = this.#c.source.read(slot, 4, this.#blksize);
    } catch (error) {
      this.#sourceFailed(error);
      return false;
    }
    if (typeof result === 'number') {
      this.#filledBlock(block, result);
      return true;
    }
    this.#reading = true;
    result.then(
      (n) => {
        this.#reading = false;
        if (this.#state !== 'data') return;
        this.#filledBlock(block, n);
        this.#pump();
      },
      (error: unknown) => {
        this.#reading = false;
        this.#sourceFailed(error);
      },
    );
    return false;
  }

  #filledBlock(block: number, n: number): void {
    const index = block % this.#slots.length;
    writeDataHeader(this.#slots[index]!, wireBlock(block, this.#c.params.rollover));
    this.#lengths[index] = 4 + n;
    if (n < this.#blksize) this.#last = block;
    this.#filled = block + 1;
  }

  #sendBlock(block: number): void {
    const index = block % this.#slots.length;
    if (block <= this.#highestSent) {
      this.counters.retransmits++;
      if (block <= this.#sampleBlock) this.#sampleBlock = -1;
    } else {
      this.#highestSent = block;
      // Time the round trip of the last block of each window: it is the one the peer ACKs.
      if (this.#sampleBlock === -1 && (block === this.#base + this.#window - 1 || block === this.#last)) {
        this.#sampleBlock = block;
        this.#sampleSentAt = this.#c.clock.now();
      }
    }
    // The armed block leaves here or has left already; either way the native side is disarmed.
    if (block === this.#armedBlock) this.#armedBlock = -1;
    if (block === this.#answeredBlock) this.#answeredBlock = -1;
    else this.#c.io.send(this.#slots[index]!, this.#lengths[index]!);
  }

  #onTimeout(): void {
    if (this.#state === 'done') return;
    this.counters.timeouts++;
    if (++this.#expiries > this.#c.retries) {
      this.#finish({
        outcome: 'timeout',
        error: new TftpError(
          'ERR_TFTP_TIMEOUT',
          `No answer from the peer after ${this.#c.retries} retransmissions`,
        ),
      });
      return;
    }
    this.#c.rto.backoff();
    if (this.#state === 'oack') {
      this.#resendOack();
      return;
    }
    this.#fastResendAt = 0;
    this.#lost();
    this.#goBack();
  }

  #sourceFailed(error: unknown): void {
    if (this.#state === 'done') return;
    const failure = new TftpError(
      'ERR_TFTP',
      `Reading the file failed: ${(error as Error)?.message ?? error}`,
      {
        tftpCode: TFTP_ERROR.NOT_DEFINED,
        cause: error,
      },
    );
    this.#c.io.send(encodeError(TFTP_ERROR.NOT_DEFINED, 'Read error'));
    this.#finish({ outcome: 'local-error', error: failure });
  }

  #protocolError(reason: string): void {
    this.#c.io.send(encodeError(TFTP_ERROR.ILLEGAL_OPERATION, reason));
    this.#finish({
      outcome: 'protocol-error',
      error: new TftpError('ERR_TFTP_PROTOCOL', `Peer broke the protocol: ${reason}`, {
        tftpCode: TFTP_ERROR.ILLEGAL_OPERATION,
      }),
    });
  }

  #finish(result: SessionResult): void {
    if (this.#state === 'done') return;
    this.#state = 'done';
    this.#alarm.clear();
    this.#probe.clear();
    if (this.#armedBlock !== -1) this.#c.io.disarmReply?.();
    this.#c.onEnd(result);
  }
}
