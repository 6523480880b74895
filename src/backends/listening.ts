/**
 * Small socket helpers the FTP and SSH backends share.
 * @internal
 * @module
 */
import type net from 'node:net';

/** Listens on host:port (exclusively); rejects with the bind error (EADDRINUSE, EACCES...). */
export function listen(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Waits for `promise` at most `ms`, leaving no timer behind either way. */
export async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
