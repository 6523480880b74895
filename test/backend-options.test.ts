import { describe, expect, it } from 'vitest';
import { FileServer, type FileServerOptions } from '../src/index.js';

// Backend option objects are checked when the server starts: each mistake is a typed error that
// names the option as the user wrote it, and nothing is left listening.
describe('backend options', () => {
  const cases: [FileServerOptions, RegExp][] = [
    [
      { protocol: 'ftp', ftp: { passiveRange: [50000, 50010] } as never },
      /^ftp\.passiveRange is not an FTP option$/,
    ],
    [
      { protocol: 'ftp', ftp: { passivePortCount: 0 } },
      /^ftp\.passivePortCount must be an integer from 1 to 65535$/,
    ],
    [{ protocol: 'ftp', ftp: { requireTls: 'yes' as never } }, /^ftp\.requireTls must be true or false$/],
    [{ protocol: 'sftp', ssh: { rsaBits: 1024 } }, /^ssh\.rsaBits must be an integer from 2048 to 8192$/],
    [
      { protocol: 'sftp', ssh: { keyboardInteractive: 1 as never } },
      /^ssh\.keyboardInteractive must be true or false$/,
    ],
    [{ protocol: 'sftp', ssh: { shell: true } as never }, /^ssh\.shell is not an SSH option$/],
  ];
  it.each(cases)('%o is refused', async (options, message) => {
    const server = new FileServer({ address: '127.0.0.1', ...options });
    const error = await server.start().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_INVALID_OPTIONS', message: expect.stringMatching(message) });
    expect(server.state).toBe('failed');
    await server.stop();
  });
});
