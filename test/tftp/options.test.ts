import { describe, expect, it } from 'vitest';
import {
  acceptOack,
  MAX_BLKSIZE,
  type NegotiationLimits,
  type NegotiationRequest,
  negotiate,
} from '../../src/tftp/options.js';

const limits: NegotiationLimits = { maxBlksize: MAX_BLKSIZE, maxWindowsize: 64, refuse: new Set() };
const read: NegotiationRequest = { direction: 'read', mode: 'octet', size: 1234 };

function oack(requested: Array<[string, string]>, request = read, l = limits) {
  const result = negotiate(requested, request, l);
  if (!result.ok) throw new Error(result.message);
  return result;
}

describe('server negotiation (RFC 2347/2348/2349/7440)', () => {
  it('answers only what was asked, in request order, with the names as the client spelled them', () => {
    const result = oack([
      ['WindowSize', '8'],
      ['TSIZE', '0'],
      ['blksize', '1468'],
      ['colour', 'blue'],
    ]);
    expect(result.oack).toEqual([
      ['WindowSize', '8'],
      ['TSIZE', '1234'],
      ['blksize', '1468'],
    ]);
    expect(result.params).toMatchObject({ blksize: 1468, windowsize: 8, tsize: 1234 });
  });

  it('grants nothing (plain RFC 1350) when nothing known was asked', () => {
    expect(oack([['x-vendor', '1']])).toEqual({
      ok: true,
      oack: [],
      params: { blksize: 512, windowsize: 1, timeoutMs: undefined, tsize: undefined, rollover: 0 },
    });
  });

  it.each([
    ['65464', '65464'],
    ['65465', '65464'],
    ['99999999999', '65464'],
    ['8', '8'],
  ])('clamps blksize %s to %s', (asked, granted) => {
    expect(oack([['blksize', asked]]).oack).toEqual([['blksize', granted]]);
  });

  it('clamps blksize and windowsize to the configured caps', () => {
    const capped = { ...limits, maxBlksize: 1468, maxWindowsize: 4 };
    expect(
      oack(
        [
          ['blksize', '9000'],
          ['windowsize', '64'],
        ],
        read,
        capped,
      ).oack,
    ).toEqual([
      ['blksize', '1468'],
      ['windowsize', '4'],
    ]);
  });

  it.each([
    ['blksize', '7'],
    ['blksize', '-512'],
    ['blksize', '+512'],
    ['blksize', '0x200'],
    ['blksize', ''],
    ['windowsize', '0'],
    ['timeout', '0'],
    ['timeout', '256'],
    ['timeout', '1.5'],
    ['tsize', '99999999999999999999'],
    ['rollover', '2'],
  ])('drops %s=%s instead of failing the request', (option, value) => {
    expect(oack([[option, value]]).oack).toEqual([]);
  });

  it('echoes timeout 1..255 exactly and uses it', () => {
    for (const t of ['1', '5', '255']) {
      const result = oack([['timeout', t]]);
      expect(result.oack).toEqual([['timeout', t]]);
      expect(result.params.timeoutMs).toBe(Number(t) * 1000);
    }
  });

  it('answers tsize 0 of a read with the real size, and leaves it out when the size is unknown', () => {
    expect(oack([['tsize', '0']]).oack).toEqual([['tsize', '1234']]);
    expect(oack([['tsize', '0']], { ...read, size: undefined }).oack).toEqual([]);
    expect(oack([['tsize', '0']], { ...read, size: 2 ** 40 }).oack).toEqual([['tsize', String(2 ** 40)]]);
    // Netascii changes the size by an amount only a scan could tell.
    expect(oack([['tsize', '0']], { ...read, mode: 'netascii' }).oack).toEqual([]);
  });

  it('echoes the tsize of a write and refuses one over the quota with ERROR 3', () => {
    const write: NegotiationRequest = { direction: 'write', mode: 'octet', maxFileSize: 1000 };
    expect(oack([['tsize', '1000']], write).oack).toEqual([['tsize', '1000']]);
    expect(negotiate([['tsize', '1001']], write, limits)).toMatchObject({ ok: false, code: 3 });
  });

  it('honours the first of duplicate options, and blksize2 as a power of two', () => {
    expect(
      oack([
        ['blksize', '1000'],
        ['BLKSIZE', '2000'],
      ]).oack,
    ).toEqual([['blksize', '1000']]);
    expect(oack([['blksize2', '1468']]).oack).toEqual([['blksize2', '1024']]);
    expect(oack([['blksize2', '1468']]).params.blksize).toBe(1024);
    expect(
      oack([
        ['blksize', '1468'],
        ['blksize2', '1024'],
      ]).oack,
    ).toEqual([['blksize', '1468']]);
  });

  it('supports utimeout and rollover (tftp-hpa extensions) and refuses what it is told to', () => {
    const result = oack([
      ['utimeout', '250000'],
      ['rollover', '1'],
    ]);
    expect(result.params).toMatchObject({ timeoutMs: 250, rollover: 1 });
    const refusing = { ...limits, refuse: new Set(['windowsize', 'tsize']) };
    expect(
      oack(
        [
          ['windowsize', '8'],
          ['tsize', '0'],
          ['blksize', '1024'],
        ],
        read,
        refusing,
      ).oack,
    ).toEqual([['blksize', '1024']]);
  });
});

describe('client check of an OACK', () => {
  const asked = { blksize: 1468, windowsize: 16, timeout: 3, tsize: 0 };

  it('accepts what was asked, smaller blksize/windowsize, and any tsize', () => {
    expect(
      acceptOack(asked, [
        ['BLKSIZE', '1024'],
        ['windowsize', '8'],
        ['timeout', '3'],
        ['tsize', '77'],
      ]),
    ).toEqual({
      ok: true,
      params: { blksize: 1024, windowsize: 8, timeoutMs: 3000, tsize: 77, rollover: 0 },
    });
  });

  it.each([
    [[['blksize', '2000']], /outside/],
    [[['blksize', '4']], /outside/],
    [[['windowsize', '32']], /outside/],
    [[['windowsize', '0']], /outside/],
    [[['timeout', '4']], /differs/],
    [[['rollover', '0']], /not requested/],
    [[['blksize', 'abc']], /bad value/],
    [
      [
        ['tsize', '1'],
        ['tsize', '2'],
      ],
      /twice/,
    ],
  ])('refuses %j', (options, reason) => {
    const result = acceptOack(asked, options as Array<[string, string]>);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('refuses options that were not asked for', () => {
    expect(acceptOack({ blksize: 1468 }, [['tsize', '10']])).toMatchObject({ ok: false });
  });
});
