/** abortSignalAfter: the signal every bounded wait of the SDK uses. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { abortSignalAfter } from '../src/util/abort.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// In a fresh process with a forced garbage collection and nothing but the signal kept: inside
// the test runner the async frames keep enough alive that the collection never bites.
const afterGc = `
const { abortSignalAfter } = await import(process.argv[1]);
const signal = abortSignalAfter(50, [new AbortController().signal]).signal;
setTimeout(() => globalThis.gc(), 10);
setTimeout(() => console.log(signal.aborted ? signal.reason.name : 'still waiting'), 300);
`;

describe('abortSignalAfter', () => {
  it('times out even after a garbage collection (AbortSignal.any + AbortSignal.timeout does not on Node 20)', async () => {
    const module = path.join(inject('distDir'), 'util', 'abort.js');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--expose-gc', '--input-type=module', '-e', afterGc, module],
      { timeout: 10_000 },
    );
    expect(stdout.trim()).toBe('TimeoutError');
  });

  it('aborts with the reason of the first source that aborts, or at once for one already aborted', () => {
    const source = new AbortController();
    using guard = abortSignalAfter(undefined, [undefined, source.signal]);
    expect(guard.signal.aborted).toBe(false);
    source.abort(new Error('stop'));
    expect(guard.signal.reason).toMatchObject({ message: 'stop' });
    using early = abortSignalAfter(10_000, [AbortSignal.abort('gone')]);
    expect(early.signal.reason).toBe('gone');
  });

  it('uses the timeout reason it is given', async () => {
    using guard = abortSignalAfter(10, [], () => new Error('too slow'));
    await sleep(50);
    expect(guard.signal.reason).toMatchObject({ message: 'too slow' });
  });

  it('once disposed, neither its sources nor its timer abort it (it has let go of them)', async () => {
    const source = new AbortController();
    const guard = abortSignalAfter(20, [source.signal]);
    guard[Symbol.dispose]();
    await sleep(60);
    source.abort();
    expect(guard.signal.aborted).toBe(false);
  });
});
