/**
 * Option negotiation, both sides: RFC 2347 (OACK), RFC 2348 (blksize), RFC 2349 (timeout, tsize),
 * RFC 7440 (windowsize), plus the tftp-hpa extensions `blksize2`, `utimeout` and `rollover`.
 *
 * Server rules: names are case-insensitive and echoed as the client spelled them; only requested
 * options appear in the OACK; unknown options and bad values are dropped, never answered with
 * ERROR 8 (tftp-hpa is harsher than needed); the only refusal is a WRQ whose tsize exceeds the
 * quota (ERROR 3). Client rules: an OACK may hold only what was asked, blksize and windowsize no
 * larger than asked, timeout exactly as asked.
 * @module
 */
import type { TftpOptionList } from './codec.js';
import { TFTP_ERROR } from './errors.js';

/** RFC 2348 limits. */
export const MIN_BLKSIZE = 8;
/** RFC 2348 limits. */
export const MAX_BLKSIZE = 65464;
/** RFC 1350 block size. */
export const DEFAULT_BLKSIZE = 512;
/** RFC 7440 limit. */
export const MAX_WINDOWSIZE = 65535;

/** What a transfer runs with once negotiation is over. */
export interface TransferParams {
  /** Payload bytes per DATA packet (512 unless negotiated). */
  readonly blksize: number;
  /** DATA packets per ACK (1 unless negotiated). */
  readonly windowsize: number;
  /** Retransmission timeout the peer asked for, in milliseconds (timeout or utimeout option). */
  readonly timeoutMs: number | undefined;
  /** Size announced in the negotiation (tsize), if any. */
  readonly tsize: number | undefined;
  /** The block number that follows 65535 (0 unless the rollover option says 1). */
  readonly rollover: 0 | 1;
}

/** Parameters of a transfer without options (RFC 1350). */
export const PLAIN_PARAMS: TransferParams = {
  blksize: DEFAULT_BLKSIZE,
  windowsize: 1,
  timeoutMs: undefined,
  tsize: undefined,
  rollover: 0,
};

/** The options this engine understands, lower-case. */
export const KNOWN_OPTIONS = [
  'blksize',
  'blksize2',
  'windowsize',
  'timeout',
  'utimeout',
  'tsize',
  'rollover',
] as const;

/** One of {@link KNOWN_OPTIONS}. */
export type KnownOption = (typeof KNOWN_OPTIONS)[number];

/** Server-side limits on what a client may negotiate. */
export interface NegotiationLimits {
  /** Largest blksize granted; larger requests are clamped (RFC 2348). */
  readonly maxBlksize: number;
  /** Largest windowsize granted; larger requests are clamped (RFC 7440). */
  readonly maxWindowsize: number;
  /** Options never granted (lower-case names), e.g. `['windowsize']` for a picky peer. */
  readonly refuse: ReadonlySet<string>;
}

/** Facts about the request that negotiation needs. */
export interface NegotiationRequest {
  readonly direction: 'read' | 'write';
  readonly mode: 'octet' | 'netascii';
  /** RRQ: the size of what will be sent, when known before sending. */
  readonly size?: number | undefined;
  /** WRQ: the largest upload accepted. */
  readonly maxFileSize?: number | undefined;
}

/** Result of the server's negotiation. */
export type Negotiation =
  | {
      readonly ok: true;
      /** Options for the OACK, in request order; empty means no OACK (plain RFC 1350 reply). */
      readonly oack: Array<[string, string]>;
      readonly params: TransferParams;
    }
  | { readonly ok: false; readonly code: number; readonly message: string };

/** A decimal option value: digits only, no sign, no overflow; undefined otherwise. */
export function parseOptionValue(value: string): number | undefined {
  if (!/^[0-9]{1,15}$/.test(value)) return undefined;
  return Number(value);
}

function largestPowerOfTwo(n: number): number {
  let p = MIN_BLKSIZE;
  while (p * 2 <= n) p *= 2;
  return p;
}

/**
 * The server's answer to a request's options. Pure: the caller supplies the size (RRQ) and quota
 * (WRQ) it knows.
 */
export function negotiate(
  requested: TftpOptionList,
  request: NegotiationRequest,
  limits: NegotiationLimits,
): Negotiation {
  const seen = new Set<string>();
  const oack: Array<[string, string]> = [];
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeoutMs: number | undefined;
  let utimeoutMs: number | undefined;
  let tsize: number | undefined;
  let rollover: 0 | 1 = 0;
  for (const [name, raw] of requested) {
    const key = name.toLowerCase();
    // blksize and blksize2 set the same thing: the first one asked wins.
    const slot = key === 'blksize2' ? 'blksize' : key;
    if (seen.has(slot) || limits.refuse.has(key)) continue;
    const value = parseOptionValue(raw);
    if (value === undefined) continue;
    let granted: number | undefined;
    switch (key) {
      case 'blksize':
        if (value >= MIN_BLKSIZE) granted = blksize = Math.min(value, MAX_BLKSIZE, limits.maxBlksize);
        break;
      case 'blksize2':
        if (value >= MIN_BLKSIZE) {
          granted = blksize = largestPowerOfTwo(Math.min(value, MAX_BLKSIZE, limits.maxBlksize));
        }
        break;
      case 'windowsize':
        if (value >= 1) granted = windowsize = Math.min(value, MAX_WINDOWSIZE, limits.maxWindowsize);
        break;
      case 'timeout':
        if (value >= 1 && value <= 255) {
          granted = value;
          timeoutMs = value * 1000;
        }
        break;
      case 'utimeout':
        if (value >= 10_000 && value <= 255_000_000) {
          granted = value;
          utimeoutMs = value / 1000;
        }
        break;
      case 'tsize':
        if (request.direction === 'read') {
          // Netascii grows the file by an amount only a full scan could tell: leave tsize out.
          if (request.mode === 'octet' && request.size !== undefined) granted = tsize = request.size;
        } else {
          if (request.maxFileSize !== undefined && value > request.maxFileSize) {
            return {
              ok: false,
              code: TFTP_ERROR.DISK_FULL,
              message: `File of ${value} bytes exceeds the ${request.maxFileSize}-byte limit`,
            };
          }
          granted = tsize = value;
        }
        break;
      case 'rollover':
        if (value === 0 || value === 1) granted = rollover = value;
        break;
      default:
        continue; // unknown options are ignored (RFC 2347)
    }
    if (granted === undefined) continue;
    seen.add(slot);
    oack.push([name, String(granted)]);
  }
  return {
    ok: true,
    oack,
    params: { blksize, windowsize, timeoutMs: utimeoutMs ?? timeoutMs, tsize, rollover },
  };
}

/** Options a client asks for. Absent fields are not requested. */
export interface RequestedOptions {
  /** RFC 2348 block size, 8..65464. */
  readonly blksize?: number | undefined;
  /** RFC 7440 window size, 1..65535. */
  readonly windowsize?: number | undefined;
  /** RFC 2349 timeout in seconds, 1..255. */
  readonly timeout?: number | undefined;
  /** RFC 2349 transfer size: 0 on a read request, the file size on a write request. */
  readonly tsize?: number | undefined;
}

/** The wire form of {@link RequestedOptions}. */
export function requestOptionList(options: RequestedOptions): Array<[string, string]> {
  const list: Array<[string, string]> = [];
  if (options.blksize !== undefined) list.push(['blksize', String(options.blksize)]);
  if (options.windowsize !== undefined) list.push(['windowsize', String(options.windowsize)]);
  if (options.timeout !== undefined) list.push(['timeout', String(options.timeout)]);
  if (options.tsize !== undefined) list.push(['tsize', String(options.tsize)]);
  return list;
}

/**
 * Checks a server's OACK against what was asked (RFC 2347, 2348, 2349, 7440) and returns the
 * transfer parameters, or the reason it breaks the rules (to send as ERROR 8).
 */
export function acceptOack(
  asked: RequestedOptions,
  oack: TftpOptionList,
): { ok: true; params: TransferParams } | { ok: false; reason: string } {
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeoutMs: number | undefined;
  let tsize: number | undefined;
  const seen = new Set<string>();
  for (const [name, raw] of oack) {
    const key = name.toLowerCase();
    if (seen.has(key)) return { ok: false, reason: `option ${name} appears twice` };
    seen.add(key);
    const value = parseOptionValue(raw);
    if (value === undefined)
      return { ok: false, reason: `option ${name} has a bad value ${JSON.stringify(raw)}` };
    switch (key) {
      case 'blksize':
        if (asked.blksize === undefined) return { ok: false, reason: 'blksize was not requested' };
        if (value < MIN_BLKSIZE || value > asked.blksize) {
          return { ok: false, reason: `blksize ${value} is outside ${MIN_BLKSIZE}..${asked.blksize}` };
        }
        blksize = value;
        break;
      case 'windowsize':
        if (asked.windowsize === undefined) return { ok: false, reason: 'windowsize was not requested' };
        if (value < 1 || value > asked.windowsize) {
          return { ok: false, reason: `windowsize ${value} is outside 1..${asked.windowsize}` };
        }
        windowsize = value;
        break;
      case 'timeout':
        if (asked.timeout === undefined) return { ok: false, reason: 'timeout was not requested' };
        if (value !== asked.timeout)
          return { ok: false, reason: `timeout ${value} differs from ${asked.timeout}` };
        timeoutMs = value * 1000;
        break;
      case 'tsize':
        if (asked.tsize === undefined) return { ok: false, reason: 'tsize was not requested' };
        tsize = value;
        break;
      default:
        return { ok: false, reason: `option ${name} was not requested` };
    }
  }
  return { ok: true, params: { blksize, windowsize, timeoutMs, tsize, rollover: 0 } };
}

/** Options as a plain object with lower-case names, for stats and logs. */
export function optionRecord(options: TftpOptionList): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of options) {
    const key = name.toLowerCase();
    if (!Object.hasOwn(out, key) && key !== '__proto__') out[key] = value;
  }
  return out;
}
