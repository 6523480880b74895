/**
 * A client that hangs up while its upload is being refused (too large, or onto a file that must
 * not be overwritten) must never crash the HTTP server: the error path once read
 * `req.socket.remoteAddress` after Node had set the socket to null. Found by the CLI tests.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { FileServer } from '../src/file-server.js';
import { describeWith } from './helpers/env.js';
import { tmpDir } from './helpers/tmp.js';

const run = promisify(execFile);

describeWith({ tools: ['curl', 'sh', 'head'] }, 'HTTP refused uploads', () => {
  it('survive clients that hang up at once, and the server keeps serving', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'kept.txt'), 'old');
    await using server = await FileServer.start({
      protocol: 'http',
      address: '127.0.0.1',
      root: dir.path,
      auth: false,
      maxFileSize: 1024,
      overwrite: false,
    });
    const crashes: unknown[] = [];
    const onCrash = (error: unknown) => crashes.push(error);
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    try {
      for (let i = 0; i < 40; i++) {
        await Promise.all([
          run('sh', ['-c', `head -c 1025 /dev/zero | curl -sS --fail -T - ${server.url}big.txt`]).catch(
            () => {},
          ),
          run('sh', ['-c', `echo new | curl -sS --fail -T - ${server.url}kept.txt`]).catch(() => {}),
        ]);
      }
    } finally {
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
    }
    expect(crashes).toEqual([]);
    expect(await (await fetch(`${server.url}kept.txt`)).text()).toBe('old');
    expect(await readFile(path.join(dir.path, 'kept.txt'), 'utf8')).toBe('old');
  });
});
