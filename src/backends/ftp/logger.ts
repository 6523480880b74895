/**
 * A bunyan-shaped logger for ftp-srv (it calls `child()` and the level methods and nothing
 * else) that writes to our debuglog section. Without it ftp-srv prints bunyan JSON on stdout,
 * and `log: console` crashes (ftp-srv issue #300). ftp-srv traces raw command lines, passwords
 * included, so every line is scrubbed before it is written.
 * @internal
 * @module
 */
import { formatWithOptions } from 'node:util';
import type { Logger } from '../../log.js';

/** The logger interface ftp-srv expects. */
export interface BunyanLike {
  child(fields: Record<string, unknown>): BunyanLike;
  trace(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  fatal(...args: unknown[]): void;
}

/** Hides `PASS <secret>` lines and every occurrence of the given secrets. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text.replace(/\bPASS\s+[^\s'",\]\\]+/gi, 'PASS ***');
  for (const secret of secrets) if (secret) out = out.replaceAll(secret, '***');
  return out;
}

/**
 * Adapts `log` (a debuglog section) into what ftp-srv expects. `secrets` are removed from every
 * line. Costs nothing while the section is off.
 */
export function bunyanAdapter(log: Logger, secrets: readonly string[], context = ''): BunyanLike {
  const level =
    (name: string) =>
    (...args: unknown[]): void => {
      if (!log.enabled) return;
      const text = formatWithOptions({ breakLength: Number.POSITIVE_INFINITY, depth: 3 }, ...args);
      log('%s', scrub(`[ftp-srv ${name}]${context} ${text}`, secrets));
    };
  return {
    child: (fields) => {
      const extra = Object.entries(fields)
        .map(([key, value]) => `${key}=${String(value)}`)
        .join(' ');
      return bunyanAdapter(log, secrets, `${context} ${extra}`);
    },
    trace: level('trace'),
    debug: level('debug'),
    info: level('info'),
    warn: level('warn'),
    error: level('error'),
    fatal: level('fatal'),
  };
}
