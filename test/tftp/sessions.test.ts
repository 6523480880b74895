/**
 * The state machines on their own, driven packet by packet with a fake clock: every timing rule
 * (Sorcerer's Apprentice, gap recovery, backoff, dally) is checked without sockets or sleeps.
 */
import { describe, expect, it } from 'vitest';
import { encodePacket, OPCODE } from '../../src/tftp/codec.js';
import { Receiver, type ReceiverConfig } from '../../src/tftp/receiver.js';
import { Sender, type SenderConfig } from '../../src/tftp/sender.js';
import { absoluteBlock, type SessionResult, wireBlock } from '../../src/tftp/session.js';
import { BufferSource } from '../../src/tftp/source.js';
import { ArmingIo, ack, data, error, FakeClock, FakeIo, MemorySink, rto } from './fakes.js';

function sender(
  content: Buffer,
  params: Partial<SenderConfig['params']> = {},
  extra: Partial<SenderConfig> = {},
) {
  const clock = new FakeClock();
  const io = new FakeIo();
  const results: SessionResult[] = [];
  const s = new Sender({
    params: { blksize: 8, windowsize: 1, rollover: 0, ...params },
    source: new BufferSource(content),
    io,
    clock,
    rto: rto(),
    retries: 3,
    onEnd: (r) => results.push(r),
    ...extra,
  });
  s.start();
  return { s, clock, io, results };
}

function receiver(params: Partial<ReceiverConfig['params']> = {}, extra: Partial<ReceiverConfig> = {}) {
  const clock = new FakeClock();
  const io = new FakeIo();
  const sink = new MemorySink();
  const results: SessionResult[] = [];
  let closed = 0;
  const r = new Receiver({
    params: { blksize: 4, windowsize: 1, rollover: 0, ...params },
    sink,
    io,
    clock,
    rto: rto(),
    retries: 3,
    opening: ack(0),
    dallyMs: 2000,
    onEnd: (result) => results.push(result),
    onClose: () => closed++,
    ...extra,
  });
  r.start();
  return { r, clock, io, sink, results, closed: () => closed };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('block numbers', () => {
  it('roll over to 0 (or to 1) after 65535 and map back to the absolute block', () => {
    expect([65535, 65536, 65537].map((b) => wireBlock(b, 0))).toEqual([65535, 0, 1]);
    expect([65535, 65536, 65537].map((b) => wireBlock(b, 1))).toEqual([65535, 1, 2]);
    expect(absoluteBlock(0, 65530, 0)).toBe(65536);
    expect(absoluteBlock(1, 65530, 1)).toBe(65536);
    expect(absoluteBlock(65535, 65536 * 3 - 10, 0)).toBe(65536 * 3 - 1);
    expect(absoluteBlock(0, 0, 0)).toBe(0);
  });
});

describe('sender', () => {
  it("sends in lockstep and never resends because an ACK repeats (RFC 1123 Sorcerer's Apprentice)", () => {
    const { s, io, clock, results } = sender(Buffer.from('0123456789abcdef-'));
    expect(io.take()).toEqual(['DATA 1 (8)']);
    s.receive(ack(1)); // a 0 ms round trip: the timeout drops to its 100 ms floor
    expect(io.take()).toEqual(['DATA 2 (8)']);
    expect(s.rtoMs).toBe(100);
    clock.advance(20); // a fifth of the floor without an ACK: the one tail loss probe
    expect(io.take()).toEqual(['DATA 2 (8)']);
    clock.advance(30);
    for (let i = 0; i < 5; i++) s.receive(ack(1)); // duplicates: silence
    expect(io.take()).toEqual([]);
    clock.advance(69);
    expect(io.take()).toEqual([]);
    // Duplicate ACKs must not keep pushing the timer back (tftpy PR #133): it fires 100 ms after the probe.
    clock.advance(1);
    expect(io.take()).toEqual(['DATA 2 (8)']);
    s.receive(ack(2));
    expect(io.take()).toEqual(['DATA 3 (1)']);
    s.receive(ack(3));
    expect(results).toEqual([{ outcome: 'ok' }]);
    expect(s.counters).toMatchObject({ bytes: 17, blocks: 3, retransmits: 2, timeouts: 1, duplicates: 5 });
    expect(clock.pendingTimers).toBe(0);
  });

  it.each([1, 4])(
    'reads the block after the window while the window is out (windowsize %i)',
    (windowsize) => {
      const source = new (class extends BufferSource {
        reads = 0;
        override read(target: Buffer, offset: number, length: number): number {
          this.reads++;
          return super.read(target, offset, length);
        }
      })(Buffer.alloc(8 * 20, 1));
      const { s, io } = sender(Buffer.alloc(0), { windowsize }, { source });
      expect(io.take()).toHaveLength(windowsize);
      expect(source.reads).toBe(windowsize + 1); // the next block is ready before the ACK comes
      s.receive(ack(windowsize));
      expect(io.take()).toHaveLength(windowsize);
      expect(source.reads).toBe(2 * windowsize + 1);
    },
  );

  it('in lockstep, arms the next block to leave on the ACK of the one in flight, and accounts for it when it did', () => {
    const io = new ArmingIo();
    const { s, clock, results } = sender(Buffer.from('0123456789abcdef-'), {}, { io });
    expect(io.take()).toEqual(['DATA 1 (8)']);
    expect(io.armed).toBe('ACK 1 -> DATA 2 (8)');
    clock.advance(s.rtoMs); // a timer resend of DATA 1 keeps the arm
    expect(io.take()).toEqual(['DATA 1 (8)']);
    s.receive(ack(1), true); // the native path sent DATA 2 as ACK 1 arrived
    expect(io.take()).toEqual([]);
    expect(io.armed).toBe('ACK 2 -> DATA 3 (1)');
    s.receive(ack(2)); // not answered (the native send failed): DATA 3 goes out from here
    expect(io.take()).toEqual(['DATA 3 (1)']);
    s.receive(ack(3));
    expect(results).toEqual([{ outcome: 'ok' }]);
    expect(s.counters).toMatchObject({ bytes: 17, blocks: 3, retransmits: 1 });
    expect(io.disarmed).toBe(0); // the last block had nothing to arm
  });

  it('withdraws an armed block when the transfer ends early, and never arms a window', () => {
    const io = new ArmingIo();
    const { s } = sender(Buffer.alloc(64), {}, { io });
    expect(io.armed).toBe('ACK 1 -> DATA 2 (8)');
    s.receive(error(0, 'stop'));
    expect(io.disarmed).toBe(1);
    const windowed = new ArmingIo();
    const w = sender(Buffer.alloc(64), { windowsize: 2 }, { io: windowed });
    w.s.receive(ack(2));
    expect(windowed.take()).toEqual(['DATA 1 (8)', 'DATA 2 (8)', 'DATA 3 (8)', 'DATA 4 (8)']);
    expect(windowed.armed).toBeUndefined();
  });

  it('sends an empty file as one empty DATA 1, and a final empty block after an exact multiple', () => {
    const empty = sender(Buffer.alloc(0));
    expect(empty.io.take()).toEqual(['DATA 1 (0)']);
    empty.s.receive(ack(1));
    expect(empty.results).toEqual([{ outcome: 'ok' }]);
    const exact = sender(Buffer.alloc(16), { windowsize: 4 });
    expect(exact.io.take()).toEqual(['DATA 1 (8)', 'DATA 2 (8)', 'DATA 3 (0)']);
    exact.s.receive(ack(3));
    expect(exact.results).toEqual([{ outcome: 'ok' }]);
  });

  it('recovers a gap in a window at once, from the block after the ACK (RFC 7440)', () => {
    const { s, io, clock } = sender(Buffer.alloc(8 * 20), { windowsize: 4 });
    expect(io.take()).toEqual(['DATA 1 (8)', 'DATA 2 (8)', 'DATA 3 (8)', 'DATA 4 (8)']);
    s.receive(ack(2)); // the peer lost 3
    clock.flush();
    expect(io.take()).toEqual(['DATA 3 (8)', 'DATA 4 (8)', 'DATA 5 (8)', 'DATA 6 (8)']);
    s.receive(ack(6));
    clock.flush();
    expect(io.take()).toEqual(['DATA 7 (8)', 'DATA 8 (8)', 'DATA 9 (8)', 'DATA 10 (8)']);
  });

  it('paces a window after a loss: bursts halve once per loss episode and grow back slowly', () => {
    const { s, io, clock } = sender(Buffer.alloc(8 * 200), { windowsize: 8 });
    expect(io.take().length).toBe(8); // no loss yet: the whole window at once
    s.receive(ack(3)); // lost 4
    s.receive(ack(3)); // the same episode: no second cut
    expect(io.take()).toEqual(['DATA 4 (8)', 'DATA 5 (8)', 'DATA 6 (8)', 'DATA 7 (8)']);
    clock.flush(); // next turn of the event loop: the rest of the window
    expect(io.take()).toEqual(['DATA 8 (8)', 'DATA 9 (8)', 'DATA 10 (8)', 'DATA 11 (8)']);
    // Four clean windows later the burst has grown by one.
    for (const acked of [11, 19, 27, 35]) {
      s.receive(ack(acked));
      expect(io.take().length).toBe(4);
      clock.flush();
      expect(io.take().length).toBe(4);
    }
    s.receive(ack(43));
    expect(io.take().length).toBe(5);
    clock.flush();
    expect(io.take().length).toBe(3);
  });

  it('resends a window whose first block was lost once per window position, not once per ACK', () => {
    const { s, io, clock } = sender(Buffer.alloc(8 * 20), { windowsize: 4 });
    io.take();
    s.receive(ack(4));
    expect(io.take()).toEqual(['DATA 5 (8)', 'DATA 6 (8)', 'DATA 7 (8)', 'DATA 8 (8)']);
    s.receive(ack(4)); // "I got nothing of the window": resend it now
    clock.flush();
    expect(io.take()).toEqual(['DATA 5 (8)', 'DATA 6 (8)', 'DATA 7 (8)', 'DATA 8 (8)']);
    s.receive(ack(4));
    s.receive(ack(4));
    clock.flush();
    expect(io.take()).toEqual([]); // no storm
    expect(s.counters.retransmits).toBe(4);
  });

  it('probes a lost window tail once, a few round trips after the window went out', () => {
    const { s, io, clock } = sender(Buffer.alloc(8 * 40), { windowsize: 4 });
    io.take();
    clock.advance(10);
    s.receive(ack(4)); // round trip 10 ms
    expect(io.take()).toEqual(['DATA 5 (8)', 'DATA 6 (8)', 'DATA 7 (8)', 'DATA 8 (8)']);
    clock.advance(29);
    expect(io.take()).toEqual([]);
    clock.advance(1); // srtt + 4 x rttvar (30 ms) passed: resend from the window's first block, once
    expect(io.take()).toEqual(['DATA 5 (8)', 'DATA 6 (8)', 'DATA 7 (8)', 'DATA 8 (8)']);
    clock.advance(30);
    expect(io.take()).toEqual([]); // no second probe for this position; the RTO (100 ms floor) follows
  });

  it('waits patienceMs after three unanswered resends of a window, for a receiver that only answers on its own timer (atftp)', () => {
    const { s, io, clock } = sender(
      Buffer.alloc(8 * 20),
      { windowsize: 4 },
      { patienceMs: 20_000, retries: 10 },
    );
    const window = ['DATA 1 (8)', 'DATA 2 (8)', 'DATA 3 (8)', 'DATA 4 (8)'];
    expect(io.take()).toEqual(window);
    for (const rto of [1000, 2000, 4000]) {
      clock.advance(rto - 1);
      expect(io.take()).toEqual([]);
      clock.advance(1);
      clock.flush(); // after a loss the window goes out in paced bursts
      expect(io.take()).toEqual(window);
    }
    clock.advance(19_999); // not the RTO (8000): the peer's own timer gets its turn
    expect(io.take()).toEqual([]);
    clock.advance(1);
    clock.flush();
    expect(io.take()).toEqual(window);
    s.receive(ack(4)); // the peer's timer fired: it repeats the ACK it lost
    clock.flush();
    expect(io.take()).toEqual(['DATA 5 (8)', 'DATA 6 (8)', 'DATA 7 (8)', 'DATA 8 (8)']);
    clock.advance(1000); // progress: back to the RTO
    clock.flush();
    expect(io.take()).toEqual(['DATA 5 (8)', 'DATA 6 (8)', 'DATA 7 (8)', 'DATA 8 (8)']);
  });

  it('never waits patienceMs in lockstep: the receiver answers every repeated block', () => {
    const { io, clock } = sender(Buffer.alloc(8 * 20), {}, { patienceMs: 20_000, retries: 10 });
    expect(io.take()).toEqual(['DATA 1 (8)']);
    for (const rto of [1000, 2000, 4000, 8000]) {
      clock.advance(rto);
      expect(io.take()).toEqual(['DATA 1 (8)']);
    }
  });

  it('ignores ACKs of blocks not sent yet and very old ones', () => {
    const { s, io } = sender(Buffer.alloc(8 * 20), { windowsize: 2 });
    io.take();
    s.receive(ack(9));
    s.receive(ack(40000));
    expect(io.take()).toEqual([]);
    expect(s.counters.duplicates).toBe(2);
  });

  it('backs off on every expiry and gives up after the retry budget', () => {
    const { io, clock, results } = sender(Buffer.alloc(100));
    io.take();
    const times: number[] = [];
    for (let i = 0; i < 10 && results.length === 0; i++) {
      clock.advance(100);
      if (io.take().length > 0) times.push(clock.now());
    }
    for (let i = 0; i < 200 && results.length === 0; i++) {
      clock.advance(100);
      if (io.take().length > 0) times.push(clock.now());
    }
    expect(times).toEqual([1000, 3000, 7000]);
    expect(results[0]).toMatchObject({ outcome: 'timeout', error: { code: 'ERR_TFTP_TIMEOUT' } });
    expect(clock.pendingTimers).toBe(0);
  });

  it('times the round trip (Karn) and shrinks its timeout towards the floor', () => {
    const { s, clock, io } = sender(Buffer.alloc(8 * 50));
    for (let b = 1; b <= 20; b++) {
      clock.advance(5);
      s.receive(ack(b));
    }
    io.take();
    expect(s.rtoMs).toBe(100);
    clock.advance(100);
    expect(io.take()).toEqual(['DATA 21 (8)']);
  });

  it('waits for ACK 0 after an OACK, repeats the OACK, and ignores stale ACKs meanwhile (edge case 11)', () => {
    const oack = encodePacket({ opcode: OPCODE.OACK, options: [['blksize', '8']] });
    const starts: number[] = [];
    const { s, io, clock } = sender(Buffer.alloc(20), {}, { oack, onDataStart: () => starts.push(1) });
    expect(io.take()).toEqual(['OACK']);
    s.receive(ack(1));
    expect(io.take()).toEqual([]);
    clock.advance(1000);
    expect(io.take()).toEqual(['OACK']);
    s.receive(ack(0));
    expect(io.take()).toEqual(['DATA 1 (8)']);
    expect(starts).toEqual([1]);
    s.receive(ack(0)); // the repeated OACK's ACK 0 arrives late: stale
    expect(io.take()).toEqual([]);
  });

  it('waits patienceMs before repeating the OACK unasked, but repeats it at once for a repeated request', () => {
    const oack = encodePacket({ opcode: OPCODE.OACK, options: [['blksize', '8']] });
    const { s, io, clock } = sender(Buffer.alloc(20), {}, { oack, patienceMs: 7500 });
    expect(io.take()).toEqual(['OACK']);
    clock.advance(7499); // far past the RTO (1000): the client repeats a lost ACK 0 itself
    expect(io.take()).toEqual([]);
    clock.advance(1);
    expect(io.take()).toEqual(['OACK']);
    clock.advance(3000);
    s.repeatOpening(); // the client never got the OACK and asks again
    expect(io.take()).toEqual(['OACK']);
    clock.advance(7499);
    expect(io.take()).toEqual([]); // the patience starts again
    s.receive(ack(0));
    expect(io.take()).toEqual(['DATA 1 (8)']);
    s.repeatOpening(); // a late duplicate request once data flows: nothing
    expect(io.take()).toEqual([]);
    expect(s.counters.retransmits).toBe(2);
  });

  it('answers a repeated request with its opening packet while waiting for DATA 1 (receiver)', () => {
    const { r, io } = receiver();
    expect(io.take()).toEqual(['ACK 0']);
    r.repeatOpening();
    expect(io.take()).toEqual(['ACK 0']);
    r.receive(data(1, 'abcd'));
    expect(io.take()).toEqual(['ACK 1']);
    r.repeatOpening();
    expect(io.take()).toEqual([]);
  });

  it('treats an ERROR in reply to the OACK as a probe, later ERRORs as peer errors, and never answers them', () => {
    const oack = encodePacket({ opcode: OPCODE.OACK, options: [['tsize', '20']] });
    const probe = sender(Buffer.alloc(20), {}, { oack });
    probe.io.take();
    probe.s.receive(error(8, 'tsize probe'));
    expect(probe.results[0]).toMatchObject({ outcome: 'probe', error: { code: 'ERR_TFTP', tftpCode: 8 } });
    expect(probe.io.take()).toEqual([]);
    const later = sender(Buffer.alloc(20));
    later.s.receive(error(3, 'disk full'));
    expect(later.results[0]).toMatchObject({ outcome: 'peer-error', error: { tftpCode: 3 } });
    expect(later.io.take()).toEqual(['DATA 1 (8)']);
  });

  it('answers DATA sent to a sender with ERROR 4 and ignores garbage', () => {
    const { s, io, results } = sender(Buffer.alloc(20));
    io.take();
    s.receive(Buffer.from([0, 9, 1]));
    expect(results).toEqual([]);
    s.receive(data(1, 'x'));
    expect(io.take()).toEqual(['ERROR 4']);
    expect(results[0]).toMatchObject({ outcome: 'protocol-error', error: { code: 'ERR_TFTP_PROTOCOL' } });
  });

  it('rolls the block number over to 0 after 65535 (or to 1 when negotiated)', () => {
    for (const rollover of [0, 1] as const) {
      const blocks = 65540;
      const { s, io, results } = sender(Buffer.alloc(blocks * 8 + 3), { windowsize: 1, rollover });
      const wires: number[] = [];
      for (let i = 0; i < blocks + 1; i++) {
        const [sent] = io.sent.splice(0);
        if (sent?.opcode !== OPCODE.DATA) throw new Error(`no DATA after ${i} blocks`);
        if (i >= 65533) wires.push(sent.block);
        s.receive(ack(sent.block));
      }
      expect(results).toEqual([{ outcome: 'ok' }]);
      expect(wires).toEqual(
        rollover === 0 ? [65534, 65535, 0, 1, 2, 3, 4, 5] : [65534, 65535, 1, 2, 3, 4, 5, 6],
      );
      expect(s.counters.bytes).toBe(blocks * 8 + 3);
    }
  });
});

describe('receiver', () => {
  it('acknowledges each block in lockstep and finishes the sink before the final ACK', async () => {
    const { r, io, sink, results, clock, closed } = receiver();
    expect(io.take()).toEqual(['ACK 0']);
    r.receive(data(1, 'abcd'));
    expect(io.take()).toEqual(['ACK 1']);
    r.receive(data(2, 'ef'));
    expect(io.take()).toEqual([]); // not before the sink has finished
    await settle();
    expect(sink.ended).toBe(true);
    expect(io.take()).toEqual(['ACK 2']);
    expect(results).toEqual([{ outcome: 'ok' }]);
    expect(sink.data.toString()).toBe('abcdef');
    // Dally: a repeated final DATA gets its ACK again, then the receiver goes away.
    r.receive(data(2, 'ef'));
    expect(io.take()).toEqual(['ACK 2']);
    expect(closed()).toBe(0);
    clock.advance(2000);
    expect(closed()).toBe(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('re-acknowledges a repeated block only when it is the last one acknowledged (no ACK storms)', () => {
    const { r, io, clock } = receiver({ windowsize: 4 });
    io.take();
    r.receive(data(1, 'aaaa'));
    r.receive(data(1, 'aaaa')); // duplicate inside an unfinished window: quiet
    expect(io.take()).toEqual([]);
    r.receive(data(2, 'bbbb'));
    r.receive(data(3, 'cccc'));
    r.receive(data(4, 'dddd'));
    expect(io.take()).toEqual(['ACK 4']);
    // The sender lost ACK 4 and resends the window after its timeout: one ACK, for its last block.
    clock.advance(60);
    for (const b of [1, 2, 3, 4]) r.receive(data(b, 'xxxx'));
    expect(io.take()).toEqual(['ACK 4']);
  });

  it('does not answer a duplicate that arrives right after its ACK (a network copy or an SAS echo)', () => {
    const { r, io, clock } = receiver();
    io.take();
    r.receive(data(1, 'abcd'));
    expect(io.take()).toEqual(['ACK 1']);
    r.receive(data(1, 'abcd')); // same instant: a copy, not a retransmission
    expect(io.take()).toEqual([]);
    clock.advance(60); // past half the timeout (100 ms floor here): the sender really lost ACK 1
    r.receive(data(1, 'abcd'));
    expect(io.take()).toEqual(['ACK 1']);
  });

  it('answers a gap once with the last block received in order, and takes the resent blocks', () => {
    const { r, io, sink } = receiver({ windowsize: 4 });
    io.take();
    r.receive(data(1, 'aaaa'));
    r.receive(data(3, 'cccc')); // 2 lost
    r.receive(data(4, 'dddd'));
    expect(io.take()).toEqual(['ACK 1']);
    r.receive(data(2, 'bbbb'));
    r.receive(data(3, 'cccc'));
    r.receive(data(4, 'dddd'));
    r.receive(data(5, 'eeee'));
    expect(io.take()).toEqual(['ACK 5']);
    expect(sink.data.toString()).toBe('aaaabbbbccccddddeeee');
  });

  it('repeats its last ACK on a timeout with backoff, then gives up', () => {
    const { r, io, clock, results } = receiver();
    io.take();
    r.receive(data(1, 'abcd')); // a 0 ms round trip: the timeout drops to its 100 ms floor
    io.take();
    const times: number[] = [];
    for (let i = 0; i < 200 && results.length === 0; i++) {
      clock.advance(10);
      if (io.take().length > 0) times.push(clock.now());
    }
    expect(times).toEqual([100, 300, 700]);
    expect(results[0]).toMatchObject({ outcome: 'timeout' });
  });

  it('acknowledges a full window before its last block goes to the sink, the final block only after the sink finished', async () => {
    const acksBeforeWrite: number[] = [];
    let io: FakeIo | undefined;
    const sink = new (class extends MemorySink {
      override write(data: Buffer): void {
        acksBeforeWrite.push(io!.sent.length);
        super.write(data);
      }
    })();
    const started = receiver({ windowsize: 2 }, { sink });
    io = started.io;
    io.take();
    started.r.receive(data(1, 'abcd'));
    started.r.receive(data(2, 'efgh'));
    expect(acksBeforeWrite).toEqual([0, 1]); // block 2 is written after ACK 2 went out
    expect(io.take()).toEqual(['ACK 2']);
    started.r.receive(data(3, 'ij'));
    expect(io.take()).toEqual([]); // the final ACK waits for the sink to finish
    await settle();
    expect(io.take()).toEqual(['ACK 3']);
    expect(sink.ended).toBe(true);
  });

  it('holds its ACK while the sink is full (backpressure paces the sender)', () => {
    const { r, io, sink } = receiver();
    io.take();
    sink.full = true;
    r.receive(data(1, 'abcd'));
    expect(io.take()).toEqual([]);
    sink.drain();
    expect(io.take()).toEqual(['ACK 1']);
  });

  it('refuses more bytes than allowed with ERROR 3', () => {
    const { r, io, results } = receiver({}, { maxBytes: 6 });
    io.take();
    r.receive(data(1, 'abcd'));
    r.receive(data(2, 'efgh'));
    expect(io.take()).toEqual(['ACK 1', 'ERROR 3']);
    expect(results[0]).toMatchObject({ outcome: 'local-error', error: { tftpCode: 3 } });
  });

  it('reports a sink failure to the peer (disk full → ERROR 3)', () => {
    const { io, sink, results } = receiver();
    io.take();
    sink.fail(Object.assign(new Error('no space'), { code: 'ENOSPC' }));
    expect(io.take()).toEqual(['ERROR 3']);
    expect(results[0]).toMatchObject({ outcome: 'local-error' });
  });

  it('refuses a block larger than blksize', () => {
    const { r, io } = receiver();
    io.take();
    r.receive(data(1, 'abcdefgh'));
    expect(io.take()).toEqual(['ERROR 4']);
  });

  it('repeats the OACK until DATA 1, and calls an ERROR reply to it a probe', () => {
    const oack = encodePacket({ opcode: OPCODE.OACK, options: [['blksize', '4']] });
    const { r, io, clock, results } = receiver({}, { opening: oack, openingIsOack: true });
    expect(io.take()).toEqual(['OACK']);
    clock.advance(1000);
    expect(io.take()).toEqual(['OACK']);
    r.receive(error(8, 'no thanks'));
    expect(results[0]).toMatchObject({ outcome: 'probe' });
  });

  it('answers a repeated OACK with ACK 0 again (client side, edge case 11)', () => {
    const { r, io } = receiver();
    expect(io.take()).toEqual(['ACK 0']);
    r.receive(encodePacket({ opcode: OPCODE.OACK, options: [['blksize', '4']] }));
    expect(io.take()).toEqual(['ACK 0']);
  });

  it.each([0, 1])(
    'accepts block %d after 65535 in lockstep, and old duplicates of 65535 stay duplicates',
    async (next) => {
      const { r, io, sink, results } = receiver({ blksize: 1 });
      io.take();
      for (let b = 1; b <= 65535; b++) r.receive(data(b, 'x'));
      expect(io.sent.length).toBe(65535);
      io.take();
      r.receive(data(next, 'y'));
      expect(io.take()).toEqual([`ACK ${next}`]);
      r.receive(data(65535, 'x')); // a late duplicate from before the wrap
      expect(io.take()).toEqual([]);
      r.receive(data(next + 1, 'z'));
      expect(io.take()).toEqual([`ACK ${next + 1}`]);
      r.receive(data(next + 2, ''));
      await settle();
      expect(results).toEqual([{ outcome: 'ok' }]);
      expect(sink.data.length).toBe(65537);
    },
  );
});
