/**
 * What the CLI prints: sizes and rates for people, one JSON object per line for programs, and
 * testbed blocks in the pyATS shape.
 * @internal
 * @module
 */
import { stringify } from 'yaml';
import { FileServerError } from '../errors.js';
import type { FileServerInfo } from '../file-server.js';
import type { TransferEvent } from '../transfer.js';

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1536` → `1.5 KiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Bytes per second as `12.3 MiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** `83.4` s → `1:23`; under a minute `0:07`. */
export function formatClock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/** Milliseconds as `0.84 s` or `120 ms`. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function rateOf(bytes: number, ms: number): number {
  return ms > 0 ? (bytes * 1000) / ms : 0;
}

function peerOf(event: TransferEvent): string {
  const { address, port } = event.peer;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** One line per finished transfer: time, server, peer, direction, file, size, duration, rate. */
export function transferLine(event: TransferEvent): string {
  const time = event.startedAt.toTimeString().slice(0, 8);
  const server = event.server ? ` ${event.server}` : '';
  const head = `${time}${server} ${peerOf(event)} ${event.direction} ${event.path} ${formatBytes(event.bytes)} in ${formatDuration(event.durationMs)}`;
  return event.ok
    ? `${head} (${formatRate(rateOf(event.bytes, event.durationMs))})`
    : `${head} FAILED: ${event.error?.message ?? 'unknown error'}`;
}

/** A transfer as a JSON event (see docs/cli.md). */
export function transferJson(event: TransferEvent): Record<string, unknown> {
  return {
    event: 'transfer',
    time: event.startedAt.toISOString(),
    server: event.server ?? null,
    protocol: event.protocol,
    peer: event.peer,
    direction: event.direction,
    path: event.path,
    bytes: event.bytes,
    durationMs: Math.round(event.durationMs * 1000) / 1000,
    bytesPerSecond: Math.round(rateOf(event.bytes, event.durationMs)),
    ok: event.ok,
    ...(event.error ? { error: errorJson(event.error) } : {}),
  };
}

/** An error as JSON fields: code (when ours), message. */
export function errorJson(error: unknown): { code?: string; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  return error instanceof FileServerError ? { code: error.code, message } : { message };
}

/** Where the CLI writes: plain lines for people, or JSON lines for programs. */
export interface Output {
  readonly json: boolean;
  readonly quiet: boolean;
  /** A line for people (not in --json mode; not in --quiet mode unless `essential`). */
  line(text: string, essential?: boolean): void;
  /** A JSON event (only in --json mode). */
  event(fields: Record<string, unknown>): void;
  /** A message on stderr, in every mode. */
  warn(text: string): void;
}

/** The Output for the given flags, writing to the process's stdout and stderr. */
export function createOutput(flags: { json: boolean; quiet: boolean }): Output {
  return {
    ...flags,
    line(text, essential = false) {
      if (!flags.json && (essential || !flags.quiet)) process.stdout.write(`${text}\n`);
    },
    event(fields) {
      if (flags.json) process.stdout.write(`${JSON.stringify(fields)}\n`);
    },
    warn(text) {
      process.stderr.write(`${text}\n`);
    },
  };
}

const known = new Set([
  'name',
  'protocol',
  'address',
  'port',
  'bindAddress',
  'bindPort',
  'addressReason',
  'root',
  'readOnly',
  'url',
  'username',
  'password',
]);

/**
 * A server's testbed entry in the pyATS shape (`path`, `credentials.default`), plus the short
 * protocol extras (fingerprints, passive ports); long ones such as PEM certificates and public
 * keys are left out.
 */
export function testbedEntry(info: FileServerInfo): Record<string, unknown> {
  const entry: Record<string, unknown> = {
    protocol: info.protocol,
    address: info.address,
    port: info.port,
    path: info.root,
  };
  if (info.username !== undefined) {
    entry.credentials = { default: { username: info.username, password: info.password } };
  }
  for (const [key, value] of Object.entries(info)) {
    const json = JSON.stringify(value);
    if (!known.has(key) && json !== undefined && json.length <= 300 && !json.includes('\\n'))
      entry[key] = value;
  }
  return entry;
}

/** A ready-to-paste testbed file holding the given servers. */
export function testbedYaml(servers: ReadonlyArray<readonly [string, FileServerInfo]>): string {
  const doc = {
    testbed: { servers: Object.fromEntries(servers.map(([name, info]) => [name, testbedEntry(info)])) },
  };
  return stringify(doc, { lineWidth: 0 });
}
