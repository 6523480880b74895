/**
 * Retransmission timeout that adapts to the measured round-trip time (Jacobson's algorithm, as in
 * RFC 6298) with Karn's rule (the caller never samples a block that was retransmitted), a floor so
 * that a fast loopback does not turn into a retransmission storm, and exponential backoff while
 * nothing gets through. RFC 1123 section 4.2.3.2 asks TFTP for exactly this; peers use fixed or
 * doubling timers.
 * @module
 */

/** Settings of a {@link RetransmitTimeout}. */
export interface RtoOptions {
  /** Timeout before the first round-trip sample, in ms. */
  readonly initialMs: number;
  /** Never wait less than this, in ms. */
  readonly minMs: number;
  /** Never wait more than this, backoff included, in ms. */
  readonly maxMs: number;
}

/** Smoothed RTT estimator and backoff state for one transfer. */
export class RetransmitTimeout {
  readonly #min: number;
  readonly #max: number;
  #srtt = -1;
  #rttvar = 0;
  #base: number;
  #backoff = 1;

  constructor(options: RtoOptions) {
    this.#min = Math.max(1, options.minMs);
    this.#max = Math.max(this.#min, options.maxMs);
    this.#base = clamp(options.initialMs, this.#min, this.#max);
  }

  /** The current timeout in ms, backoff included. */
  get timeoutMs(): number {
    return Math.min(this.#base * this.#backoff, this.#max);
  }

  /**
   * How long to wait before probing for a lost tail (an early first retransmission): a few round
   * trips, never less than a fifth of the floor (event-loop hiccups must not look like loss), or
   * undefined before the first sample.
   */
  get probeTimeoutMs(): number | undefined {
    if (this.#srtt < 0) return undefined;
    const probe = Math.max(this.#min / 5, 2 * this.#srtt, this.#srtt + 4 * this.#rttvar);
    return Math.min(this.timeoutMs, probe);
  }

  /** Smoothed round-trip time in ms, or undefined before the first sample. */
  get srttMs(): number | undefined {
    return this.#srtt < 0 ? undefined : this.#srtt;
  }

  /** Feeds one round-trip measurement of a packet that was sent exactly once (Karn). */
  sample(rttMs: number): void {
    const rtt = Math.max(0, rttMs);
    if (this.#srtt < 0) {
      this.#srtt = rtt;
      this.#rttvar = rtt / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - rtt);
      this.#srtt = 0.875 * this.#srtt + 0.125 * rtt;
    }
    this.#base = clamp(this.#srtt + Math.max(1, 4 * this.#rttvar), this.#min, this.#max);
    this.#backoff = 1;
  }

  /** A timeout expired: double the next wait (up to the maximum). */
  backoff(): void {
    if (this.#base * this.#backoff < this.#max) this.#backoff *= 2;
  }

  /** Progress was made without a usable sample: forget the backoff. */
  resetBackoff(): void {
    this.#backoff = 1;
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** The engine's timing settings. */
export interface TimingSettings {
  readonly timeoutMs: number;
  readonly minTimeoutMs: number;
  readonly maxTimeoutMs: number;
}

/**
 * The RTO of one transfer. A negotiated RFC 2349 timeout is where it starts (nothing is measured
 * yet) and, by default, its ceiling: the measured round trip then drives it, as RFC 1123 section
 * 4.2.3.2 asks (curl asks for 6 s by default; waiting 6 s for every lost packet would be absurd).
 * With `strict`, the negotiated value is also the floor: never retransmit sooner than the peer said.
 */
export function transferRto(
  timing: TimingSettings,
  negotiatedMs: number | undefined,
  strict = false,
): RetransmitTimeout {
  if (negotiatedMs === undefined) {
    return new RetransmitTimeout({
      initialMs: timing.timeoutMs,
      minMs: timing.minTimeoutMs,
      maxMs: timing.maxTimeoutMs,
    });
  }
  return strict
    ? new RetransmitTimeout({
        initialMs: negotiatedMs,
        minMs: negotiatedMs,
        maxMs: Math.max(timing.maxTimeoutMs, negotiatedMs),
      })
    : new RetransmitTimeout({
        initialMs: negotiatedMs,
        minMs: Math.min(timing.minTimeoutMs, negotiatedMs),
        maxMs: negotiatedMs,
      });
}
