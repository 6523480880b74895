import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, FileServerError, fromSystemError, isFileServerError } from '../src/errors.js';

describe('errors', () => {
  it('documents every code in docs/errors.md, and documents no code that does not exist', async () => {
    const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8');
    const documented = [...doc.matchAll(/^## (ERR_[A-Z0-9_]+)\s*$/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('keeps code, cause and details, and is recognised across package copies', () => {
    const cause = new Error('inner');
    const error = new FileServerError('ERR_NOT_FOUND', 'gone', { cause, details: { path: 'x' } });
    expect(error).toMatchObject({
      name: 'FileServerError',
      code: 'ERR_NOT_FOUND',
      cause,
      details: { path: 'x' },
    });
    // An error from another copy of the package carries the same brand.
    const foreign = Object.defineProperty(new Error('x'), Symbol.for('testbed-fileserver.error'), {
      value: true,
    });
    expect(foreign).toBeInstanceOf(FileServerError);
    expect(new Error('plain')).not.toBeInstanceOf(FileServerError);
    expect(isFileServerError(error, 'ERR_NOT_FOUND')).toBe(true);
    expect(isFileServerError(error, 'ERR_READ_ONLY')).toBe(false);
  });

  it('maps system errors to codes and keeps them as cause', () => {
    const sys = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' });
    expect(fromSystemError(sys, 'ERR_START_FAILED', 'ctx')).toMatchObject({
      code: 'ERR_ADDRESS_IN_USE',
      cause: sys,
    });
    const other = Object.assign(new Error('weird'), { code: 'EWEIRD' });
    expect(fromSystemError(other, 'ERR_START_FAILED', 'ctx')).toMatchObject({ code: 'ERR_START_FAILED' });
    const abort = new DOMException('aborted', 'AbortError');
    expect(fromSystemError(abort, 'ERR_START_FAILED', 'ctx')).toBe(abort);
  });
});
