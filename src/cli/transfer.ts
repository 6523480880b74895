/**
 * `testbed-fileserver get` and `put`: host-side copies from and to a server, by URL or by name
 * from a testbed file, on the library's copy().
 * @internal
 * @module
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { type CopyResult, copy } from '../copy/copy.js';
import { formatConcreteUrl, parseServerReference } from '../copy/url.js';
import { FileServerError } from '../errors.js';
import { redactUrl } from '../log.js';
import { Testbed } from '../testbed/testbed.js';
import { PROTOCOLS, type Protocol } from '../transfer.js';
import { type OptionSpec, parse, parseCredentials, str, usageError, type Values } from './args.js';
import { createOutput, formatBytes, formatDuration, formatRate } from './output.js';
import { ProgressBar } from './progress.js';
import { trapInterrupts } from './signals.js';

const OPTIONS: OptionSpec = {
  testbed: { type: 'string', short: 't' },
  user: { type: 'string', short: 'u' },
  password: { type: 'string' },
  'password-file': { type: 'string' },
  fingerprint: { type: 'string' },
  verify: { type: 'boolean' },
  sha256: { type: 'string' },
  'no-overwrite': { type: 'boolean' },
  'no-progress': { type: 'boolean' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
};

const COMMON_HELP = `
Servers are named by URL, proto://[user[:password]@]host[:port]/path (tftp, ftp, http, https,
scp, sftp), or with --testbed FILE by name: proto://server-name/path, address, port and credentials
taken from the file (e.g. one written by \`up --output\`).

Options:
  -t, --testbed FILE      look server names up in this testbed file
  -u, --user NAME         username (overrides the URL and the testbed)
      --password TEXT     password (visible in ps: prefer --password-file)
      --password-file F   read the password from F
      --fingerprint FP    scp/sftp: the server's host key, SHA256:... (else not checked);
                          https: its key pin, sha256//... (else the system's CAs decide)
      --verify            read the destination back and compare size and SHA-256
      --sha256 HEX        fail unless the data has this SHA-256
      --no-overwrite      refuse to replace an existing local file
      --no-progress       no progress bar (there is none when stdout is not a terminal)
      --json              print the result as one JSON object
  -q, --quiet             print nothing but errors
`;

/** `get --help`. */
export const GET_USAGE = `Usage: testbed-fileserver get <url> [local]

Downloads <url> to [local] (default: the file's name in the current folder; a folder gets the
file's name inside it). Nothing is left behind under the local name if the copy fails.
${COMMON_HELP}`;

/** `put --help`. */
export const PUT_USAGE = `Usage: testbed-fileserver put <local> <url>

Uploads <local> to <url>; a URL ending in / gets the local file's name.
${COMMON_HELP}`;

/** Runs `get` or `put`; resolves with the exit status. */
export async function transfer(command: 'get' | 'put', argv: readonly string[]): Promise<number> {
  const { values, positionals } = parse(command, argv, OPTIONS, { min: command === 'get' ? 1 : 2, max: 2 });
  if (values.help) {
    process.stdout.write(command === 'get' ? GET_USAGE : PUT_USAGE);
    return 0;
  }
  const out = createOutput({ json: values.json === true, quiet: values.quiet === true });
  const testbedFile = str(values, 'testbed');
  const testbed = testbedFile ? await Testbed.load(testbedFile) : new Testbed();
  // `shown`: source and destination as the user wrote them (a URL becomes a one-server testbed
  // named `url` inside), passwords hidden.
  let from: string;
  let to: string;
  let shown: [string, string];
  if (command === 'get') {
    from = reference(positionals[0]!, values, testbed, testbedFile !== undefined, command);
    const name = path.posix.basename(parseServerReference(from).path);
    to = await localTarget(positionals[1] ?? '.', name);
    shown = [redactUrl(positionals[0]!), to];
    // Say so before connecting anywhere.
    if (values['no-overwrite'] && (await exists(to))) {
      throw new FileServerError('ERR_FILE_EXISTS', `${to} exists and --no-overwrite is given`);
    }
  } else {
    from = positionals[0]!;
    const named = positionals[1]!.endsWith('/') ? encodeURIComponent(path.basename(from)) : '';
    to = reference(positionals[1]!, values, testbed, testbedFile !== undefined, command) + named;
    shown = [from, redactUrl(positionals[1]! + named)];
  }
  const sha256 = str(values, 'sha256');
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(sha256))
    throw usageError('--sha256 must be 64 hex digits', command);

  const bar =
    process.stdout.isTTY && !out.json && !out.quiet && !values['no-progress']
      ? new ProgressBar(process.stdout, path.posix.basename(command === 'get' ? to : from))
      : undefined;
  using interrupts = trapInterrupts();
  let result: CopyResult;
  try {
    result = await copy(testbed, from, to, {
      signal: interrupts.stop,
      overwrite: values['no-overwrite'] !== true,
      ...(values.verify || sha256 ? { verify: sha256 === undefined ? true : { sha256 } } : {}),
      ...(bar ? { onProgress: (progress) => bar.update(progress) } : {}),
    });
  } finally {
    bar?.finish();
  }
  const rate = result.durationMs > 0 ? (result.bytes * 1000) / result.durationMs : 0;
  out.event({ event: 'copied', ...result, from: shown[0], to: shown[1] });
  out.line(
    `${command === 'get' ? 'downloaded' : 'uploaded'} ${formatBytes(result.bytes)} in ${formatDuration(result.durationMs)} (${formatRate(rate)}) ${shown[0]} -> ${shown[1]}${result.verified ? ', verified' : ''}`,
  );
  out.line(`sha256 ${result.sha256}`);
  return 0;
}

/**
 * The `proto://name/path` reference copy() takes. With a testbed file the host is a server
 * name; otherwise the URL is concrete and becomes a one-server testbed of its own.
 */
function reference(url: string, values: Values, testbed: Testbed, byName: boolean, command: string): string {
  const credentials = parseCredentials(values, command);
  const fingerprint = str(values, 'fingerprint');
  if (byName) {
    const ref = parseServerReference(url);
    const entry = testbed.server(ref.server);
    // Credentials and fingerprint from the command line go into the entry the copy reads; a
    // fingerprint given replaces the host keys or certificate the entry lists.
    const { hostKeyFingerprints: _listed, certificate: _pem, ...rest } = entry;
    testbed.servers.set(ref.server, {
      ...(fingerprint === undefined ? entry : { ...rest, ...identity(ref.protocol, fingerprint) }),
      ...credentials,
    });
    return url;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usageError(
      `not a URL: ${JSON.stringify(redactUrl(url))}; expected proto://host[:port]/path`,
      command,
    );
  }
  const protocol = parsed.protocol.slice(0, -1) as Protocol;
  if (!PROTOCOLS.includes(protocol)) {
    throw usageError(
      `unsupported protocol ${JSON.stringify(protocol)}; use one of ${PROTOCOLS.join(', ')}`,
      command,
    );
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw usageError(`no host in ${redactUrl(url)}`, command);
  const decode = (text: string) => (text === '' ? undefined : decodeURIComponent(text));
  const username = credentials.username ?? decode(parsed.username);
  const password = credentials.password ?? decode(parsed.password);
  testbed.servers.set('url', {
    protocol,
    address: host,
    ...(parsed.port === '' ? {} : { port: Number(parsed.port) }),
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(fingerprint === undefined ? {} : identity(protocol, fingerprint)),
  });
  // The URL's path is already percent-encoded; the reference decodes it again.
  return `${formatConcreteUrl(protocol, 'url', undefined, '')}${parsed.pathname.replace(/^\//, '')}`;
}

/** Where `--fingerprint` goes in an entry: the key pin for https, the host key for scp and sftp. */
function identity(protocol: Protocol, fingerprint: string): Record<string, string> {
  return protocol === 'https' ? { publicKeyPin: fingerprint } : { hostKeyFingerprint: fingerprint };
}

/** A local destination: a folder (existing, or written with a trailing slash) gets `name` inside. */
async function localTarget(local: string, name: string): Promise<string> {
  if (name === '') throw usageError('the URL names a folder, not a file', 'get');
  const info = await stat(local).catch(() => undefined);
  return local.endsWith('/') || info?.isDirectory() ? path.join(local, name) : local;
}

function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
