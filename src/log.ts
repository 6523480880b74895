/**
 * Logging and structured events. Nothing here writes to stdout or stderr unless the user asks:
 * debug lines appear with `NODE_DEBUG=fileserver*` (or a single section such as
 * `NODE_DEBUG=fileserver:tftp`), and structured events go to `node:diagnostics_channel`, which
 * costs nothing while no one subscribes.
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import { debuglog } from 'node:util';

/** A debug logger: a no-op unless its section is enabled in NODE_DEBUG. */
export interface Logger {
  (message: string, ...args: unknown[]): void;
  /** True when the section is enabled; check it before building costly messages. */
  readonly enabled: boolean;
}

const logger = (section: string): Logger => debuglog(section) as Logger;

/** @internal */
export const log = {
  server: logger('fileserver'),
  net: logger('fileserver:net'),
  testbed: logger('fileserver:testbed'),
  http: logger('fileserver:http'),
  tftp: logger('fileserver:tftp'),
  ftp: logger('fileserver:ftp'),
  ssh: logger('fileserver:ssh'),
  copy: logger('fileserver:copy'),
  device: logger('fileserver:device'),
} as const;

/**
 * diagnostics_channel names this package publishes on. Subscribe with
 * `diagnostics_channel.subscribe(channels.transfer, fn)`.
 */
export const channels = {
  /** A transfer finished (a {@link TransferEvent}), on every server of every protocol. */
  transfer: 'testbed-fileserver:transfer',
  /** A server started listening; the message is its info without credentials. */
  serverStart: 'testbed-fileserver:server:start',
  /** A server stopped; the message is `{ name, protocol }`. */
  serverStop: 'testbed-fileserver:server:stop',
} as const;

/** @internal */
export const transferChannel = diagnostics.channel(channels.transfer);
/** @internal */
export const serverStartChannel = diagnostics.channel(channels.serverStart);
/** @internal */
export const serverStopChannel = diagnostics.channel(channels.serverStop);

const secretKeys = /pass(word)?|secret|token|key$/i;

/**
 * A copy of `value` with secret-looking fields (password, passphrase, token, ...) replaced by
 * `'***'`, for logs and inspection. Credentials are never logged in clear.
 * @internal
 */
export function redact<T>(value: T): T {
  if (Array.isArray(value)) return value.map(redact) as T;
  if (value === null || typeof value !== 'object' || value instanceof Date || Buffer.isBuffer(value)) {
    return value;
  }
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    out[key] = secretKeys.test(key) && field !== undefined ? '***' : redact(field);
  }
  return out as T;
}

/** Credentials in a URL (`scheme://user:pass@host`) shown as `scheme://user:***@host`. @internal */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}
