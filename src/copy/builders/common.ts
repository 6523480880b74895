/**
 * Pieces the per-OS builders share: URLs with the credentials placed per policy, device path
 * naming, the length check, and turning output into a result or a typed error.
 * @internal
 * @module
 */
import { FileServerError } from '../../errors.js';
import type { Protocol } from '../../transfer.js';
import { STANDARD_PORTS } from '../../transfer.js';
import { hideSecrets } from '../device.js';
import { formatConcreteUrl } from '../url.js';
import type { CopyOutput, CopyRequest, CredentialPolicy, FailureReason, RemoteFile } from './types.js';

/** Matches the last line of a typical prompt: `R1#`, `R1(config)#`, `user@host:~$ `, `user@r1> `. */
export const GENERIC_PROMPT = /^[^\n]{0,120}[#>$%] ?$/;

/** Default timeout of a device copy, as in pyATS. */
export const COPY_TIMEOUT_MS = 300_000;

/** Patterns that say why a copy failed, most specific first. */
const REASONS: ReadonlyArray<readonly [RegExp, FailureReason]> = [
  [/timed? ?out/i, 'timeout'],
  [/no such file|file not found|not found|does not exist|\b404\b|\b550\b/i, 'not-found'],
  [
    /permission denied|access denied|access violation|login incorrect|authentication fail|not logged in|\b401\b|\b403\b|unauthori[sz]ed|\b530\b/i,
    'permission',
  ],
  [/no space|not enough space|insufficient|disk full|quota/i, 'no-space'],
  [
    /connection refused|no route to host|network is unreachable|host is unreachable|could not resolve|unknown host|name or service not known|failed to connect/i,
    'unreachable',
  ],
  [
    /invalid input|invalid command|incomplete command|ambiguous command|syntax error|unknown command|command not found|invalid option|unrecognized option|usage:/i,
    'invalid-command',
  ],
  [/already exist|file exists/i, 'exists'],
];

/** The reason a failed copy's output gives. */
export function failureReason(output: string): FailureReason {
  return REASONS.find(([pattern]) => pattern.test(output))?.[1] ?? 'failed';
}

/** The error of a failed device copy: ERR_DEVICE_COMMAND_FAILED with reason, command and output. */
export function copyFailed(
  os: string,
  command: string,
  output: string,
  secrets: readonly string[],
  reason: FailureReason = failureReason(output),
): FileServerError {
  const shownOutput = hideSecrets(output, secrets).trim();
  const shownCommand = hideSecrets(command, secrets);
  const lastLines = shownOutput.split('\n').slice(-3).join(' | ');
  return new FileServerError(
    'ERR_DEVICE_COMMAND_FAILED',
    `${os} copy failed (${reason}): ${lastLines || 'no output'}`,
    {
      details: { reason, command: shownCommand, output: shownOutput },
    },
  );
}

/** What a platform's copy output looks like. */
export interface OutputRules {
  /** Any match means the copy failed. */
  readonly failure: RegExp;
  /** A match means the device says it succeeded; group 1, when present, is the byte count. */
  readonly success: RegExp | undefined;
}

/** Reads copy output with the platform's rules; throws ERR_DEVICE_COMMAND_FAILED on failure. */
export function readOutput(
  rules: OutputRules,
  os: string,
  command: string,
  output: string,
  secrets: readonly string[],
): CopyOutput {
  if (rules.failure.test(output)) throw copyFailed(os, command, output, secrets);
  const success = rules.success?.exec(output);
  const bytes = success?.[1] === undefined ? undefined : Number(success[1].replace(/,/g, ''));
  return { confirmed: success !== null && success !== undefined, bytes };
}

/** The last path segment of a server path. */
export function baseName(remotePath: string): string {
  const parts = remotePath.split('/').filter((p) => p !== '');
  const name = parts.at(-1);
  if (name === undefined) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `The server path ${JSON.stringify(remotePath)} names no file`,
    );
  }
  return name;
}

/** A device path that names a folder (`bootflash:`, `/tmp/`) gets the server file's name. */
export function deviceTarget(deviceFile: string, remotePath: string): string {
  if (deviceFile === '') throw new FileServerError('ERR_INVALID_OPTIONS', 'The device path is empty');
  return /[:/]$/.test(deviceFile) ? deviceFile + baseName(remotePath) : deviceFile;
}

/** `bootflash:dir/a.bin` → `{ folder: 'bootflash:dir/', name: 'dir/a.bin' }` as IOS prompts show it. */
export function splitDevicePath(deviceFile: string): { folder: string; name: string; fileSystem: string } {
  const colon = deviceFile.indexOf(':');
  const fileSystem = colon < 0 ? '' : deviceFile.slice(0, colon + 1);
  const name = deviceFile.slice(fileSystem.length).replace(/^\/+/, '');
  const slash = deviceFile.lastIndexOf('/');
  const folder = slash >= fileSystem.length ? deviceFile.slice(0, slash + 1) : fileSystem;
  return { folder, name, fileSystem };
}

/** The server-side path as servers report it: `/` separators, no leading slash. */
export function reportedPath(remotePath: string): string {
  return remotePath
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .join('/');
}

/** A URL for the device with the credentials placed per `policy`. */
export function deviceUrl(
  remote: RemoteFile,
  policy: CredentialPolicy,
  options: { withPort?: boolean } = {},
): string {
  const port =
    remote.port === STANDARD_PORTS[remote.protocol] || options.withPort === false ? undefined : remote.port;
  const credentials =
    policy === 'url'
      ? { username: remote.username, password: remote.password }
      : policy === 'prompt'
        ? { username: remote.username }
        : {};
  return formatConcreteUrl(remote.protocol, remote.host, port, remote.path, credentials);
}

/** Throws ERR_UNSUPPORTED_PROTOCOL unless the builder handles `protocol`. */
export function assertProtocol(os: string, protocols: readonly Protocol[], protocol: Protocol): void {
  if (!protocols.includes(protocol)) {
    throw new FileServerError(
      'ERR_UNSUPPORTED_PROTOCOL',
      `The ${os} copy builder does not do ${protocol}; it does ${protocols.join(', ')}`,
      { details: { os, protocol } },
    );
  }
}

/** Refuses an FTP client without TLS when the server requires TLS (FTPS). */
export function assertPlainFtpAccepted(os: string, remote: RemoteFile, client?: string): void {
  if (remote.protocol === 'ftp' && remote.ftpTls === 'required') {
    throw new FileServerError(
      'ERR_UNSUPPORTED_PROTOCOL',
      `The ${os} FTP client${client === undefined ? '' : ` ${client}`} cannot do TLS, which the server requires (ftp.requireTls: false lets plain FTP in${client === undefined ? '' : '; the curl client does TLS'})`,
      { details: { os, protocol: 'ftp', ...(client === undefined ? {} : { client }) } },
    );
  }
}

/** The entry's FTPS facts, as {@link RemoteFile.ftpTls} has them. */
export function ftpTlsOf(entry: Readonly<Record<string, unknown>>): RemoteFile['ftpTls'] {
  if (entry.tls !== 'explicit') return undefined;
  return entry.requireTls === false ? 'optional' : 'required';
}

/** Throws ERR_INVALID_OPTIONS when `command` is longer than the CLI accepts. */
export function assertLength(os: string, command: string, max: number, secrets: readonly string[]): void {
  if (command.length > max) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `The ${os} copy command is ${command.length} characters, more than the ${max} the CLI accepts: use shorter paths (${hideSecrets(command, secrets).slice(0, 80)}...)`,
      { details: { os, length: command.length, max } },
    );
  }
}

/** Throws ERR_INVALID_OPTIONS when a protocol's client only talks to the standard port. */
export function assertStandardPort(os: string, only: readonly Protocol[], remote: RemoteFile): void {
  if (only.includes(remote.protocol) && remote.port !== STANDARD_PORTS[remote.protocol]) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `The ${os} ${remote.protocol} client only uses port ${STANDARD_PORTS[remote.protocol]}, but the server listens on ${remote.port}: start it with port: 'standard' or ${STANDARD_PORTS[remote.protocol]}`,
      { details: { os, protocol: remote.protocol, port: remote.port } },
    );
  }
}

/** The secrets of a request: the password, raw and percent-encoded. */
export function secretsOf(request: CopyRequest): string[] {
  const password = request.remote.password;
  return password === undefined || password === '' ? [] : [password];
}

/** A string option of `request.options`, checked. */
export function stringOption(
  request: CopyRequest,
  key: string,
  allowed?: readonly string[],
): string | undefined {
  const value = request.options?.[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || (allowed && !allowed.includes(value))) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `Option ${key} must be ${allowed ? `one of ${allowed.join(', ')}` : 'a string'}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** A boolean option of `request.options`, checked. */
export function booleanOption(request: CopyRequest, key: string): boolean | undefined {
  const value = request.options?.[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `Option ${key} must be true or false, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Names (VRF, interface) go into commands unquoted: refuse anything but a plain token. */
export function token(what: string, value: string): string {
  if (!/^[\w./:@-]+$/.test(value)) {
    throw new FileServerError('ERR_INVALID_OPTIONS', `${what} ${JSON.stringify(value)} is not a plain name`);
  }
  return value;
}
