/** A fake clock and I/O for driving the state machines without sockets or real time. */
import { decodePacket, encodePacket, OPCODE, type TftpPacket } from '../../src/tftp/codec.js';
import { RetransmitTimeout } from '../../src/tftp/rto.js';
import type { SessionClock, SessionIo } from '../../src/tftp/session.js';
import type { BlockSink } from '../../src/tftp/sink.js';

export class FakeClock implements SessionClock {
  time = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.time + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  readonly #deferred: Array<() => void> = [];

  defer(fn: () => void): void {
    this.#deferred.push(fn);
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** When the earliest timer is due, if any is set. */
  get nextTimerAt(): number | undefined {
    let at: number | undefined;
    for (const timer of this.#timers.values()) if (at === undefined || timer.at < at) at = timer.at;
    return at;
  }

  /** Runs deferred work (what the event loop's next turn would run). */
  flush(): void {
    for (let i = 0; i < 10_000 && this.#deferred.length > 0; i++) this.#deferred.shift()!();
  }

  /** Moves time forward, running deferred work and firing due timers in order. */
  advance(ms: number): void {
    this.flush();
    const end = this.time + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers)
        if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      if (!due) break;
      this.#timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].fn();
      this.flush();
    }
    this.time = end;
  }
}

export class FakeIo implements SessionIo {
  readonly sent: TftpPacket[] = [];
  pending = 0;

  send(packet: Buffer, length = packet.length): void {
    this.sent.push(decodePacket(Buffer.from(packet.subarray(0, length))));
  }

  whenSent(fn: () => void): void {
    fn();
  }

  /** Everything sent since the last call, as short strings: `DATA 3 (512)`, `ACK 2`, `ERROR 5`, `OACK`. */
  take(): string[] {
    const out = this.sent.splice(0).map((p) => {
      switch (p.opcode) {
        case OPCODE.DATA:
          return `DATA ${p.block} (${p.data.length})`;
        case OPCODE.ACK:
          return `ACK ${p.block}`;
        case OPCODE.ERROR:
          return `ERROR ${p.code}`;
        case OPCODE.OACK:
          return 'OACK';
        default:
          return `op${p.opcode}`;
      }
    });
    return out;
  }
}

/** A FakeIo that can arm a reply (as the native path does): records what is armed. */
export class ArmingIo extends FakeIo {
  /** The armed reply: the ACK it waits for and the packet, as `ACK n -> DATA m (len)`. */
  armed: string | undefined;
  disarmed = 0;
  refuse = false;

  armReply(ackBlock: number, packet: Buffer, length: number): boolean {
    if (this.refuse) return false;
    const p = decodePacket(Buffer.from(packet.subarray(0, length)));
    this.armed = `ACK ${ackBlock} -> DATA ${p.opcode === OPCODE.DATA ? `${p.block} (${p.data.length})` : '?'}`;
    return true;
  }

  disarmReply(): void {
    this.armed = undefined;
    this.disarmed++;
  }
}

export class MemorySink implements BlockSink {
  readonly chunks: Buffer[] = [];
  ended = false;
  aborted: Error | undefined;
  full = false;
  #drain: Array<() => void> = [];
  #onError: ((error: unknown) => void) | undefined;

  write(data: Buffer): void {
    this.chunks.push(Buffer.from(data));
  }

  get ready(): boolean {
    return !this.full;
  }

  whenDrained(fn: () => void): void {
    if (!this.full) fn();
    else this.#drain.push(fn);
  }

  drain(): void {
    this.full = false;
    for (const fn of this.#drain.splice(0)) fn();
  }

  async end(): Promise<void> {
    this.ended = true;
  }

  async abort(error: Error): Promise<void> {
    this.aborted = error;
  }

  onError(fn: (error: unknown) => void): void {
    this.#onError = fn;
  }

  fail(error: Error): void {
    this.#onError?.(error);
  }

  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export const ack = (block: number) => encodePacket({ opcode: OPCODE.ACK, block });
export const data = (block: number, payload: Buffer | string) =>
  encodePacket({ opcode: OPCODE.DATA, block, data: Buffer.from(payload) });
export const error = (code: number, message = 'x') => encodePacket({ opcode: OPCODE.ERROR, code, message });

export const rto = (initialMs = 1000) => new RetransmitTimeout({ initialMs, minMs: 100, maxMs: 8000 });
