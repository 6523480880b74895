/**
 * Opens an ssh2 client connection over a socket we create ourselves, so that its local address
 * is known, with password (and keyboard-interactive) or key authentication and an optional
 * host key fingerprint check.
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import ssh2 from 'ssh2';
import { type ErrorCode, FileServerError } from '../errors.js';
import { raceSignal } from '../util/abort.js';

const { Client } = ssh2;

/** How to reach and log in to an SSH server. */
export interface SshLogin {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password?: string | undefined;
  /** A private key in OpenSSH or PEM format, instead of or besides the password. */
  readonly privateKey?: string | Buffer | undefined;
  readonly passphrase?: string | undefined;
  /**
   * The server's host key fingerprint(s), `SHA256:<base64>` as `ssh-keygen -l` prints them.
   * When given, any other key is refused; when absent, any key is accepted (lab devices and
   * throw-away servers have ephemeral keys).
   */
  readonly hostKeyFingerprint?: string | readonly string[] | undefined;
  /** Local address to connect from (default: the one the kernel routes from). */
  readonly localAddress?: string | undefined;
}

/** An open connection and the socket under it. @internal */
export interface SshConnection {
  readonly client: InstanceType<typeof Client>;
  readonly socket: net.Socket;
}

/** `SHA256:<base64 without padding>` of a raw host key, as OpenSSH prints it. */
export function sshFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** Connects and authenticates; failures are FileServerErrors with `code`. @internal */
export async function connectSsh(
  login: SshLogin,
  options: { code: ErrorCode; timeoutMs: number; signal?: AbortSignal | undefined; what: string },
): Promise<SshConnection> {
  const { code, timeoutMs, signal, what } = options;
  signal?.throwIfAborted();
  const socket = net.connect({
    host: login.host,
    port: login.port,
    ...(login.localAddress === undefined ? {} : { localAddress: login.localAddress }),
  });
  const client = new Client();
  let hostKeyRefused: string | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', (error: Error & { level?: string }) => {
      const reason = hostKeyRefused ?? describe(error);
      reject(new FileServerError(code, `Cannot connect to ${what}: ${reason}`, { cause: error }));
    });
    client.once('close', () =>
      reject(new FileServerError(code, `Connection to ${what} closed during login`)),
    );
  });
  ready.catch(() => {});
  client.on('keyboard-interactive', (_name, _instructions, _lang, prompts, finish) => {
    finish(prompts.map(() => login.password ?? ''));
  });
  try {
    client.connect({
      sock: socket,
      host: login.host,
      port: login.port,
      username: login.username,
      ...(login.password === undefined ? {} : { password: login.password }),
      ...(login.privateKey === undefined ? {} : { privateKey: login.privateKey }),
      ...(login.passphrase === undefined ? {} : { passphrase: login.passphrase }),
      tryKeyboard: login.password !== undefined,
      readyTimeout: timeoutMs,
      keepaliveInterval: 15_000,
      hostVerifier: (key: Buffer) => {
        const expected = login.hostKeyFingerprint;
        if (expected === undefined) return true;
        const seen = sshFingerprint(key);
        if (typeof expected === 'string' ? seen === expected : expected.includes(seen)) return true;
        hostKeyRefused = `host key ${seen} is not the expected ${[expected].flat().join(' or ')}`;
        return false;
      },
    });
    await raceSignal(ready, signal);
    return { client, socket };
  } catch (error) {
    client.end();
    socket.destroy();
    throw error;
  }
}

function describe(error: Error & { level?: string; code?: string }): string {
  if (error.level === 'client-authentication') return 'authentication failed (wrong username or password?)';
  if (error.level === 'client-timeout') return 'timed out during the SSH handshake';
  return error.message;
}
