import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';

/** An `Authorization` header value for Basic auth. */
export function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Open file descriptors of this process. */
export async function openFdCount(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

export interface CurlResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs curl (a real client written by others); never rejects on a non-zero exit. */
export function curl(
  args: readonly string[],
  options: { timeoutMs?: number; input?: Buffer } = {},
): Promise<CurlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'curl',
      ['--silent', '--show-error', ...args],
      { encoding: 'buffer', timeout: options.timeoutMs ?? 30_000, maxBuffer: 256 << 20 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr: stderr.toString() });
      },
    );
    // curl may exit without reading its input (a refused upload): its exit code says so, and
    // the EPIPE that writing then meets must not become an uncaught exception.
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input);
  });
}
