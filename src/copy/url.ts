/**
 * Server names to concrete URLs: `ftp://images/dir/file.bin` becomes
 * `ftp://user:pass@198.18.0.1:40123/dir/file.bin`, from the testbed entry `images`.
 * @module
 */
import { FileServerError } from '../errors.js';
import { redactUrl } from '../log.js';
import { urlHost } from '../net/url.js';
import type { ServerEntry, Testbed } from '../testbed/testbed.js';
import { PROTOCOLS, type Protocol, STANDARD_PORTS } from '../transfer.js';

/**
 * Where the credentials go in {@link ResolvedUrl.url}:
 * - `url`: `user:password@` (percent-encoded), for clients and platforms that read them there;
 * - `user`: `user@` only, for platforms that prompt for the password (scp, IOS-XR ftp, Junos);
 * - `separate`: none; the caller passes username and password on their own (HTTP headers,
 *   prompts, client options).
 */
export type CredentialPlacement = 'url' | 'user' | 'separate';

/** Options of {@link resolveUrl}. */
export interface ResolveUrlOptions {
  /** Where the credentials go in `url` (default `url`). */
  credentials?: CredentialPlacement;
  /**
   * Pick one address of a multi-homed server (an `address` list). Default: the first one.
   */
  chooseAddress?: (addresses: readonly string[]) => string;
}

/** A `proto://server-name/path` reference before it is looked up. */
export interface ServerReference {
  /** The scheme, lower-cased (`FTP://` gives `ftp`). */
  readonly protocol: Protocol;
  /** The server's name in the testbed. */
  readonly server: string;
  /** The path on the server as written after the name, decoded, without the first `/`. */
  readonly path: string;
  /** Credentials written into the reference itself, which override the testbed's. */
  readonly username: string | undefined;
  /** The password written after `user:` in the reference, decoded; undefined when absent. */
  readonly password: string | undefined;
}

/** A server reference turned into something a client can connect to. */
export interface ResolvedUrl {
  /** The concrete URL, with credentials placed as asked. */
  readonly url: string;
  /** The same URL without a password: safe to log and to show in errors. */
  readonly displayUrl: string;
  /** The reference's protocol (`scp` and `sftp` both reach an entry serving either). */
  readonly protocol: Protocol;
  /** The server's name in the testbed. */
  readonly server: string;
  /** The address to connect to (no brackets for IPv6). */
  readonly host: string;
  /** The entry's `port`, or the protocol's standard port ({@link STANDARD_PORTS}) when it has none. */
  readonly port: number;
  /** True when `port` is the protocol's well-known port (it is then left out of `url`). */
  readonly standardPort: boolean;
  /**
   * The path on the server, decoded: relative to the server's root or login folder. A leading
   * `/` (written as `//` after the name) makes it absolute on servers that allow that.
   */
  readonly path: string;
  /** Login: the reference's own, else the entry's; always set for ftp, scp and sftp. */
  readonly username: string | undefined;
  /** Password: the reference's own, else the entry's; never write it to logs (use `displayUrl`). */
  readonly password: string | undefined;
  /** The testbed entry the URL came from. */
  readonly entry: ServerEntry;
}

const referencePattern = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(\/[^?#]*)?$/i;

/**
 * Splits `proto://[user[:password]@]server-name[/path]` without looking anything up. Names are
 * case-sensitive (unlike WHATWG URL hosts) and may hold any character but `/`, `?`, `#` and `@`.
 * Throws ERR_INVALID_OPTIONS for anything else and ERR_UNSUPPORTED_PROTOCOL for an unknown scheme.
 */
export function parseServerReference(reference: string): ServerReference {
  const match = referencePattern.exec(reference);
  if (!match) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `Not a server reference: ${JSON.stringify(redactUrl(reference))}; expected protocol://server-name/path`,
    );
  }
  const scheme = match[1]!.toLowerCase();
  if (!PROTOCOLS.includes(scheme as Protocol)) {
    throw new FileServerError(
      'ERR_UNSUPPORTED_PROTOCOL',
      `Unknown protocol ${JSON.stringify(scheme)} in ${redactUrl(reference)}; use one of ${PROTOCOLS.join(', ')}`,
    );
  }
  const authority = match[2]!;
  const at = authority.lastIndexOf('@');
  const server = decode(authority.slice(at + 1), reference);
  if (server === '') {
    throw new FileServerError('ERR_INVALID_OPTIONS', `No server name in ${redactUrl(reference)}`);
  }
  let username: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    username = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), reference);
    if (colon >= 0) password = decode(userinfo.slice(colon + 1), reference);
  }
  const path = decode((match[3] ?? '/').slice(1), reference);
  return { protocol: scheme as Protocol, server, path, username, password };
}

/** True when `value` looks like `proto://...` rather than a local path. */
export function isServerReference(value: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
}

/**
 * Looks the server of `reference` up in the testbed and gives the concrete URL: address, port
 * (left out when standard), percent-encoded credentials placed per `options.credentials`.
 *
 * Throws FileServerErrors that name what is missing: ERR_SERVER_NOT_FOUND (listing the names that
 * exist), ERR_PROTOCOL_MISMATCH (the entry serves another protocol), ERR_CREDENTIALS_MISSING (ftp,
 * scp and sftp need a username and password; http needs both or neither), ERR_INVALID_OPTIONS
 * (the entry has no address).
 *
 * ```ts
 * resolveUrl(testbed, 'ftp://images/dir/file.bin').url; // 'ftp://tbx:pw@198.18.0.1:40123/dir/file.bin'
 * ```
 */
export function resolveUrl(
  testbed: Testbed,
  reference: string,
  options: ResolveUrlOptions = {},
): ResolvedUrl {
  return resolveReference(testbed, parseServerReference(reference), options);
}

/** {@link resolveUrl} for a reference already split into its parts (no parsing, no decoding). */
export function resolveReference(
  testbed: Testbed,
  ref: ServerReference,
  options: ResolveUrlOptions = {},
): ResolvedUrl {
  const entry = testbed.server(ref.server);
  const entryProtocol = typeof entry.protocol === 'string' ? entry.protocol.toLowerCase() : undefined;
  if (entryProtocol !== undefined && !compatible(entryProtocol, ref.protocol)) {
    throw new FileServerError(
      'ERR_PROTOCOL_MISMATCH',
      `Server ${JSON.stringify(ref.server)} serves ${entryProtocol}, not ${ref.protocol}`,
      { details: { server: ref.server, serves: entryProtocol, asked: ref.protocol } },
    );
  }
  const host = chooseHost(ref.server, entry, options);
  const port = entry.port === undefined ? STANDARD_PORTS[ref.protocol] : Number(entry.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `Server ${JSON.stringify(ref.server)} has no usable port (${JSON.stringify(entry.port)})`,
    );
  }
  const username = ref.username ?? stringField(entry.username);
  const password = ref.password ?? stringField(entry.password);
  checkCredentials(ref, username, password);
  const placement = options.credentials ?? 'url';
  const standardPort = port === STANDARD_PORTS[ref.protocol];
  const build = (withPassword: boolean) =>
    formatConcreteUrl(ref.protocol, host, standardPort ? undefined : port, ref.path, {
      username: placement === 'separate' ? undefined : username,
      password: placement === 'url' && withPassword ? password : undefined,
    });
  return {
    url: build(true),
    displayUrl: build(false),
    protocol: ref.protocol,
    server: ref.server,
    host,
    port,
    standardPort,
    path: ref.path,
    username,
    password,
    entry,
  };
}

/**
 * `protocol://[user[:password]@]host[:port]/path` with every part percent-encoded (path per
 * segment, so `/` stays a separator; a path starting with `/` gives the absolute form `//`).
 */
export function formatConcreteUrl(
  protocol: string,
  host: string,
  port: number | undefined,
  path: string,
  credentials: { username?: string | undefined; password?: string | undefined } = {},
): string {
  const { username, password } = credentials;
  const userinfo =
    username === undefined
      ? ''
      : `${encodeURIComponent(username)}${password === undefined ? '' : `:${encodeURIComponent(password)}`}@`;
  const encodedPath = path.split('/').map(encodeURIComponent).join('/');
  return `${protocol}://${userinfo}${urlHost(host)}${port === undefined ? '' : `:${port}`}/${encodedPath}`;
}

/** scp and sftp are both served by one SSH server, so either scheme reaches it. */
function compatible(serves: string, asked: Protocol): boolean {
  if (serves === asked) return true;
  const ssh = ['scp', 'sftp'];
  return ssh.includes(serves) && ssh.includes(asked);
}

function chooseHost(name: string, entry: ServerEntry, options: ResolveUrlOptions): string {
  const raw = entry.address ?? (typeof entry.server === 'string' ? entry.server : undefined);
  const list = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter(
    (a): a is string => typeof a === 'string' && a !== '',
  );
  if (list.length === 0) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `Server ${JSON.stringify(name)} has no address in the testbed`,
      { details: { server: name } },
    );
  }
  const chosen = list.length > 1 && options.chooseAddress ? options.chooseAddress(list) : list[0]!;
  // Accept `[v6]` as written in some testbeds; URLs add the brackets back.
  return chosen.startsWith('[') && chosen.endsWith(']') ? chosen.slice(1, -1) : chosen;
}

function checkCredentials(ref: ServerReference, username: string | undefined, password: string | undefined) {
  const missing: string[] = [];
  switch (ref.protocol) {
    case 'tftp':
      return;
    case 'http':
    case 'https':
      // Either both (Basic auth) or neither (auth: false).
      if (username !== undefined && password === undefined) missing.push('password');
      if (username === undefined && password !== undefined) missing.push('username');
      break;
    default:
      if (username === undefined) missing.push('username');
      if (password === undefined) missing.push('password');
  }
  if (missing.length > 0) {
    throw new FileServerError(
      'ERR_CREDENTIALS_MISSING',
      `Server ${JSON.stringify(ref.server)} (${ref.protocol}) has no ${missing.join(' or ')} in the testbed`,
      { details: { server: ref.server, missing } },
    );
  }
}

function stringField(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return String(value);
}

function decode(text: string, reference: string): string {
  try {
    return decodeURIComponent(text);
  } catch (error) {
    throw new FileServerError('ERR_INVALID_OPTIONS', `Bad percent-encoding in ${redactUrl(reference)}`, {
      cause: error,
    });
  }
}
