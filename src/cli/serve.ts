/**
 * `testbed-fileserver serve <protocol> [root]`: one server until Ctrl-C.
 * @internal
 * @module
 */
import { optionsFromEntry } from '../dynamic-servers.js';
import { FileServerError } from '../errors.js';
import { FileServer, type FileServerOptions } from '../file-server.js';
import { Testbed } from '../testbed/testbed.js';
import { PROTOCOLS, type Protocol } from '../transfer.js';
import {
  type OptionSpec,
  parse,
  parseAdvertise,
  parseCredentials,
  parseList,
  parsePort,
  parseSize,
  str,
  usageError,
  type Values,
} from './args.js';
import { DEFAULT_OSES } from './device-commands.js';
import { createOutput } from './output.js';
import {
  describeServer,
  holdUntilInterrupted,
  listeningEvent,
  type Named,
  printUsageHints,
  reportTransfers,
  writeLiveTestbed,
} from './session.js';
import { trapInterrupts } from './signals.js';

/** Options `serve` and `up` share. */
export const OUTPUT_OPTIONS: OptionSpec = {
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  output: { type: 'string', short: 'o' },
  os: { type: 'string' },
};

const OPTIONS: OptionSpec = {
  ...OUTPUT_OPTIONS,
  name: { type: 'string', short: 'n' },
  address: { type: 'string', short: 'a' },
  subnet: { type: 'string', short: 's' },
  interface: { type: 'string', short: 'i' },
  'reachable-from': { type: 'string', short: 'r' },
  advertise: { type: 'string' },
  port: { type: 'string', short: 'p' },
  user: { type: 'string', short: 'u' },
  password: { type: 'string' },
  'password-file': { type: 'string' },
  'read-only': { type: 'boolean' },
  writable: { type: 'boolean', short: 'w' },
  'no-overwrite': { type: 'boolean' },
  'max-file-size': { type: 'string' },
  'no-auth': { type: 'boolean' },
  embedded: { type: 'boolean' },
  ftps: { type: 'boolean' },
  'single-port': { type: 'boolean' },
  'passive-ports': { type: 'string' },
  'stop-grace': { type: 'string' },
  testbed: { type: 'string', short: 't' },
};

/** `serve --help`. */
export const SERVE_USAGE = `Usage: testbed-fileserver serve <protocol> [root] [options]

Serves [root] (default: the current folder) over tftp, ftp, http, https, scp or sftp until Ctrl-C.
Prints where it listens, the credentials, a testbed entry and example device commands, then one
line per transfer.

Address (give at most one; default: TESTBED_FILESERVER_ADDRESS, else the default route's source):
  -a, --address IP            bind exactly this address (0.0.0.0 or :: for all)
  -s, --subnet CIDR           the one local address inside this subnet
  -i, --interface NAME        the first address of this interface
  -r, --reachable-from IP     the local address the kernel routes toward this device
      --advertise ADDR[:PORT] tell devices this address/port instead (NAT, jump hosts)
Server:
  -p, --port N|standard       listen on N (fails if busy), or the standard port if free (default: any free port)
  -n, --name NAME             name in the testbed (default: fileserver)
  -u, --user NAME             username (default: random); give with --password or --password-file
      --password TEXT         password (visible to other users in ps: prefer --password-file)
      --password-file FILE    read the password from FILE
  -w, --writable              accept uploads (default: read-only)
      --read-only             refuse uploads (the default)
      --no-overwrite          refuse uploads onto existing files
      --max-file-size SIZE    largest upload, e.g. 512M or 2G
      --no-auth               http, https: no Basic auth
      --embedded              scp: run an embedded SSH server (else publish this host's sshd)
      --ftps                  ftp: offer explicit TLS (AUTH TLS) with a generated certificate
      --passive-ports MIN-MAX ftp: passive data ports, e.g. 50000-50100
      --single-port           tftp: every transfer from the listening port (NAT, port forwarding)
      --stop-grace SECONDS    on Ctrl-C, let running transfers finish this long (default 2)
  -t, --testbed FILE          take the settings of server --name from this testbed file
Output:
      --os LIST               device examples for these OSes (default: ${DEFAULT_OSES.join(',')}; none: --os '')
  -o, --output FILE           write a testbed file with the live entry while running (mode 600)
      --json                  one JSON object per line instead of text
  -q, --quiet                 only the address and credentials

Examples:
  testbed-fileserver serve tftp ./images --subnet 198.18.0.0/24 --port standard
  testbed-fileserver serve http . --writable --json
  testbed-fileserver serve sftp ./out --user lab --password-file ~/.lab-pw
`;

/** Runs `serve`; resolves with the exit status. */
export async function serve(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parse('serve', argv, OPTIONS, { min: 1, max: 2 });
  if (values.help) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const out = createOutput({ json: values.json === true, quiet: values.quiet === true });
  const name = str(values, 'name') ?? 'fileserver';
  const testbedFile = str(values, 'testbed');
  const testbed = testbedFile ? await Testbed.load(testbedFile) : new Testbed();
  const options = serverOptions(positionals, values, name, testbed, testbedFile !== undefined);
  const oses = parseList(str(values, 'os') ?? DEFAULT_OSES.join(','));

  using interrupts = trapInterrupts();
  // Whatever fails after this point, leaving the function stops the server.
  await using server = new FileServer(options);
  const servers: Named[] = [[name, server]];
  reportTransfers(out, servers);
  const info = await server.start({ signal: interrupts.stop });
  const output = str(values, 'output');
  const removeOutput = output ? await writeLiveTestbed(output, testbed, servers) : async () => {};

  out.event(listeningEvent(name, info));
  out.line(`${info.protocol} server ${name} listening on ${info.url}`, true);
  for (const line of describeServer(info, '; --writable accepts uploads')) {
    out.line(line, line.includes('username') || line.includes('password'));
  }
  printUsageHints(out, servers, oses);
  out.line('');
  out.line('Transfers (Ctrl-C stops the server):');
  await holdUntilInterrupted(out, servers, interrupts, removeOutput);
  return 0;
}

function serverOptions(
  positionals: string[],
  values: Values,
  name: string,
  testbed: Testbed,
  fromTestbed: boolean,
): FileServerOptions {
  const protocol = positionals[0]!.toLowerCase() as Protocol;
  if (!PROTOCOLS.includes(protocol)) {
    throw usageError(
      `unknown protocol ${JSON.stringify(positionals[0])}; use one of ${PROTOCOLS.join(', ')}`,
      'serve',
    );
  }
  // Settings of the testbed entry come first; the command line overrides them.
  let base: Partial<FileServerOptions> = {};
  if (fromTestbed) {
    const entry = testbed.server(name);
    if (entry.protocol !== undefined && entry.protocol !== protocol) {
      throw new FileServerError(
        'ERR_PROTOCOL_MISMATCH',
        `Server ${JSON.stringify(name)} in the testbed serves ${entry.protocol}, not ${protocol}`,
      );
    }
    base = optionsFromEntry(name, { ...entry, protocol }, testbed, {});
  }
  const addressKeys = ['address', 'subnet', 'interface', 'reachableFrom'] as const;
  const address = {
    address: str(values, 'address'),
    subnet: str(values, 'subnet'),
    interface: str(values, 'interface'),
    reachableFrom: str(values, 'reachable-from'),
  };
  if (addressKeys.some((key) => address[key] !== undefined)) {
    for (const key of addressKeys) delete base[key];
  }
  if (values['read-only'] && values.writable)
    throw usageError('give --read-only or --writable, not both', 'serve');
  // Read-only unless --writable, or the testbed entry, says otherwise; except information-only
  // scp, where this host's sshd does the writing and nothing of ours could refuse it.
  const infoOnly = protocol === 'scp' && values.embedded !== true && base.embedded !== true;
  const readOnly = values.writable
    ? false
    : values['read-only'] === true ||
      (base.readOnly ?? (base.writable === undefined ? !infoOnly : !base.writable));
  const o: Record<string, unknown> = {
    ...base,
    protocol,
    name,
    testbed,
    root: positionals[1] ?? base.root ?? process.cwd(),
    readOnly,
    ...parseCredentials(values, 'serve'),
  };
  delete o.writable;
  for (const key of addressKeys) if (address[key] !== undefined) o[key] = address[key];
  const advertise = str(values, 'advertise');
  if (advertise !== undefined) o.advertise = parseAdvertise(advertise);
  const port = str(values, 'port');
  if (port !== undefined) o.port = parsePort(port);
  if (values['no-overwrite']) o.overwrite = false;
  const maxSize = str(values, 'max-file-size');
  if (maxSize !== undefined) o.maxFileSize = parseSize(maxSize);
  if (values['no-auth']) o.auth = false;
  if (values.embedded) o.embedded = true;
  const grace = str(values, 'stop-grace');
  if (grace !== undefined) {
    const seconds = Number(grace);
    if (!(seconds >= 0)) throw usageError('--stop-grace must be a number of seconds >= 0', 'serve');
    o.stopGraceMs = seconds * 1000;
  }
  const ftp: Record<string, unknown> = { ...(base.ftp ?? {}) };
  if (values.ftps) ftp.tls = true;
  const passive = str(values, 'passive-ports');
  if (passive !== undefined) {
    const match = /^(\d+)-(\d+)$/.exec(passive);
    const [min, max] = match ? [Number(match[1]), Number(match[2])] : [0, 0];
    if (!match || min < 1 || max > 65535 || min > max) {
      throw usageError('--passive-ports must be MIN-MAX within 1..65535', 'serve');
    }
    ftp.passivePortRange = [min, max];
  }
  if (Object.keys(ftp).length > 0) {
    if (protocol !== 'ftp') throw usageError('--ftps and --passive-ports are for ftp', 'serve');
    o.ftp = ftp;
  }
  if (values['single-port']) {
    if (protocol !== 'tftp') throw usageError('--single-port is for tftp', 'serve');
    o.tftp = { ...(base.tftp ?? {}), singlePort: true };
  }
  return o as unknown as FileServerOptions;
}
