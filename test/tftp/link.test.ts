/**
 * A Sender and a Receiver talking to each other over a simulated link that drops, duplicates,
 * delays (and so reorders) packets and injects garbage, on a fake clock. fast-check chooses the
 * file, blksize, windowsize and every packet's fate; whatever it chooses, a transfer ends on both
 * sides in bounded time with no timer left, the receiver only ever holds a prefix of the file,
 * and "ok" means the file arrived whole; and where loss is sparse, every transfer succeeds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePacket, OPCODE } from '../../src/tftp/codec.js';
import { Receiver } from '../../src/tftp/receiver.js';
import { Sender } from '../../src/tftp/sender.js';
import type { SessionIo, SessionResult } from '../../src/tftp/session.js';
import { BufferSource } from '../../src/tftp/source.js';
import { FakeClock, MemorySink, rto } from './fakes.js';

interface Fate {
  readonly drop: boolean;
  readonly duplicate: boolean;
  /** Extra delay in ms on top of the 1 ms link latency: packets overtake each other. */
  readonly delayMs: number;
  /** A datagram of random bytes delivered along with this one. */
  readonly garbage: Uint8Array | undefined;
}

/**
 * Random bytes that are not a well-formed request, DATA, ACK or ERROR: from the peer's own port,
 * those would be indistinguishable from the real thing (the TID and UDP's checksum are what rule
 * them out on a real network), so they are cut short of a whole packet.
 */
function garbled(bytes: Uint8Array): Uint8Array {
  try {
    const opcode = decodePacket(Buffer.from(bytes)).opcode;
    return opcode >= OPCODE.RRQ && opcode <= OPCODE.ERROR ? bytes.subarray(0, 3) : bytes;
  } catch {
    return bytes;
  }
}

const fate: fc.Arbitrary<Fate> = fc.record({
  drop: fc.nat(9).map((n) => n === 0), // about 10 % loss
  duplicate: fc.nat(19).map((n) => n === 0),
  delayMs: fc.oneof(fc.constant(0), fc.nat(40)),
  garbage: fc.option(fc.uint8Array({ minLength: 0, maxLength: 24 }).map(garbled), {
    freq: 15,
    nil: undefined,
  }),
});

const clean: Fate = { drop: false, duplicate: false, delayMs: 0, garbage: undefined };

/** One direction of the link: every packet takes the next fate, in a cycle. */
function link(
  clock: FakeClock,
  fates: readonly Fate[],
  deliver: () => (datagram: Buffer, garbage: boolean) => void,
): SessionIo {
  let n = 0;
  const schedule = (datagram: Buffer, delayMs: number, garbage = false) =>
    clock.setTimeout(() => deliver()(datagram, garbage), 1 + delayMs);
  return {
    pending: 0,
    whenSent: (fn) => fn(),
    send(packet, length = packet.length) {
      const f = fates.length === 0 ? clean : fates[n++ % fates.length]!;
      const copy = Buffer.from(packet.subarray(0, length)); // the sender reuses its buffers
      if (f.garbage) schedule(Buffer.from(f.garbage), f.delayMs >> 1, true);
      if (f.drop) return;
      schedule(copy, f.delayMs);
      if (f.duplicate) schedule(copy, f.delayMs + 3);
    },
  };
}

interface Outcome {
  sent: SessionResult[];
  received: SessionResult[];
  data: Buffer;
  closed: boolean;
  pendingTimers: number;
  wrongData: string[];
}

/** Runs one transfer to its end; throws if a state machine throws. */
async function transfer(
  content: Buffer,
  blksize: number,
  windowsize: number,
  toReceiver: readonly Fate[],
  toSender: readonly Fate[],
): Promise<Outcome> {
  const clock = new FakeClock();
  const sink = new MemorySink();
  const out: Outcome = {
    sent: [],
    received: [],
    data: Buffer.alloc(0),
    closed: false,
    pendingTimers: 0,
    wrongData: [],
  };
  const params = { blksize, windowsize, rollover: 0 as const };
  let receiver: Receiver | undefined;
  let sender: Sender | undefined;
  const checkData = (datagram: Buffer) => {
    // What the sender puts on the wire is always the file's bytes for that block.
    const p = decodePacket(datagram);
    if (p.opcode !== OPCODE.DATA) return;
    const expected = content.subarray((p.block - 1) * blksize, p.block * blksize);
    if (!p.data.equals(expected)) out.wrongData.push(`DATA ${p.block}`);
  };
  sender = new Sender({
    params,
    source: new BufferSource(content),
    io: link(clock, toReceiver, () => (d, garbage) => {
      if (!garbage) checkData(d);
      receiver!.receive(d);
    }),
    clock,
    rto: rto(200),
    retries: 5,
    onEnd: (r) => out.sent.push(r),
  });
  receiver = new Receiver({
    params,
    sink,
    io: link(clock, toSender, () => (d) => sender!.receive(d)),
    clock,
    rto: rto(200),
    retries: 5,
    dallyMs: 2000,
    onEnd: (r) => out.received.push(r),
    onClose: () => {
      out.closed = true;
    },
  });
  receiver.start();
  sender.start();
  // Event by event until no timer is left; bounded in steps and in (fake) time.
  for (let step = 0; step < 100_000; step++) {
    for (let i = 0; i < 5; i++) await Promise.resolve(); // the sink's end() settles in microtasks
    const at = clock.nextTimerAt;
    if (at === undefined || at > 3_600_000) break;
    clock.advance(Math.max(0, at - clock.time));
  }
  out.data = sink.data;
  out.pendingTimers = clock.pendingTimers;
  return out;
}

describe('sender and receiver over a lossy, reordering link', () => {
  it('end on both sides, leave no timer, never corrupt, and succeed whenever the link delivers everything', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 400 }),
        fc.constantFrom(8, 16, 33),
        fc.constantFrom(1, 2, 4, 8),
        fc.array(fate, { maxLength: 40 }),
        fc.array(fate, { maxLength: 40 }),
        async (bytes, blksize, windowsize, toReceiver, toSender) => {
          const content = Buffer.from(bytes);
          const o = await transfer(content, blksize, windowsize, toReceiver, toSender);
          expect(o.wrongData).toEqual([]);
          expect(o.sent).toHaveLength(1);
          expect(o.received).toHaveLength(1);
          expect(o.pendingTimers).toBe(0);
          expect(o.closed || o.received[0]!.outcome !== 'ok').toBe(true);
          // The receiver only ever holds a prefix of the file; "ok" means all of it.
          expect(o.data.equals(content.subarray(0, o.data.length))).toBe(true);
          if (o.received[0]!.outcome === 'ok') expect(o.data.length).toBe(content.length);
          // The sender hears "ok" only in the final ACK, which goes out once the file is whole.
          if (o.sent[0]!.outcome === 'ok') expect(o.received[0]!.outcome).toBe('ok');
          for (const r of [...o.sent, ...o.received]) expect(['ok', 'timeout']).toContain(r.outcome);
          const lossless = [...toReceiver, ...toSender].every((f) => !f.drop && !f.garbage);
          if (lossless) expect([o.sent[0]!.outcome, o.received[0]!.outcome]).toEqual(['ok', 'ok']);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('always succeed when no two of any four packets in a row are lost, whatever the window', async () => {
    const sparse = fc
      .array(fate, { minLength: 4, maxLength: 40 })
      .filter((fates) =>
        fates.every((f, i) => !f.drop || [1, 2, 3].every((d) => !fates[(i + d) % fates.length]!.drop)),
      );
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 400 }),
        fc.constantFrom(8, 16, 33),
        fc.constantFrom(1, 2, 4, 8),
        sparse,
        sparse,
        async (bytes, blksize, windowsize, toReceiver, toSender) => {
          const content = Buffer.from(bytes);
          const o = await transfer(content, blksize, windowsize, toReceiver, toSender);
          expect([o.sent[0]?.outcome, o.received[0]?.outcome]).toEqual(['ok', 'ok']);
          expect(o.data.equals(content)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
