import { describe, expect, it } from 'vitest';
import { RetransmitTimeout, transferRto } from '../../src/tftp/rto.js';

describe('retransmission timeout', () => {
  it('starts at the initial value and adapts to the measured round trip, never below the floor', () => {
    const rto = new RetransmitTimeout({ initialMs: 1000, minMs: 50, maxMs: 5000 });
    expect(rto.timeoutMs).toBe(1000);
    for (let i = 0; i < 20; i++) rto.sample(1);
    expect(rto.timeoutMs).toBe(50);
    for (let i = 0; i < 50; i++) rto.sample(300);
    expect(rto.timeoutMs).toBeGreaterThanOrEqual(300);
    expect(rto.timeoutMs).toBeLessThan(400);
    expect(rto.srttMs).toBeCloseTo(300, 0);
  });

  it('follows Jacobson: variance widens the timeout', () => {
    const steady = new RetransmitTimeout({ initialMs: 1000, minMs: 1, maxMs: 60_000 });
    const jittery = new RetransmitTimeout({ initialMs: 1000, minMs: 1, maxMs: 60_000 });
    for (let i = 0; i < 40; i++) {
      steady.sample(100);
      jittery.sample(i % 2 ? 50 : 150);
    }
    expect(jittery.timeoutMs).toBeGreaterThan(steady.timeoutMs + 100);
  });

  it('doubles on every expiry up to the ceiling, and a sample resets the backoff', () => {
    const rto = new RetransmitTimeout({ initialMs: 100, minMs: 50, maxMs: 1000 });
    const waits = [];
    for (let i = 0; i < 6; i++) {
      waits.push(rto.timeoutMs);
      rto.backoff();
    }
    expect(waits).toEqual([100, 200, 400, 800, 1000, 1000]);
    rto.sample(100);
    expect(rto.timeoutMs).toBeLessThan(400);
  });

  it('starts a negotiated timeout as the first wait and keeps it as the ceiling (or the floor when strict)', () => {
    const timing = { timeoutMs: 1000, minTimeoutMs: 50, maxTimeoutMs: 5000 };
    const adaptive = transferRto(timing, 6000);
    expect(adaptive.timeoutMs).toBe(6000);
    adaptive.sample(2);
    expect(adaptive.timeoutMs).toBe(50);
    for (let i = 0; i < 10; i++) adaptive.backoff();
    expect(adaptive.timeoutMs).toBe(6000);
    const strict = transferRto(timing, 2000, true);
    strict.sample(2);
    expect(strict.timeoutMs).toBe(2000);
    expect(transferRto(timing, undefined).timeoutMs).toBe(1000);
  });
});
