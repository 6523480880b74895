/**
 * Linux hosts and Linux-based devices: the copy runs one of the host's own clients in its
 * shell (curl, tftp-hpa `tftp`, busybox, lftp, OpenSSH scp, sshpass), and the exit status
 * decides.
 *
 * Clients per protocol (`options.client`): tftp `tftp` (default), `busybox`, `curl`;
 * http `curl` (default), `busybox` (wget, download only); https `curl`; ftp `curl` (default,
 * and the only one for a server that requires TLS), `lftp`, `busybox` (ftpget/ftpput); scp and
 * sftp `scp` (default; the password is answered at its prompt), `sshpass`. curl trusts exactly
 * the server's public key when the testbed entry has its pin (https and FTPS).
 * @module
 */
import { FileServerError } from '../../errors.js';
import type { Protocol } from '../../transfer.js';
import { STANDARD_PORTS } from '../../transfer.js';
import type { Dialog } from '../device.js';
import {
  assertLength,
  assertPlainFtpAccepted,
  assertProtocol,
  COPY_TIMEOUT_MS,
  copyFailed,
  deviceTarget,
  deviceUrl,
  failureReason,
  GENERIC_PROMPT,
  reportedPath,
  secretsOf,
  stringOption,
  token,
} from './common.js';
import type { CopyCommandBuilder, CopyPlan, CopyRequest, CredentialPolicy, RemoteFile } from './types.js';

const PROTOCOLS: readonly Protocol[] = ['tftp', 'http', 'https', 'ftp', 'scp', 'sftp'];
const CLIENTS: Readonly<Record<Protocol, readonly string[]>> = {
  tftp: ['tftp', 'busybox', 'curl'],
  http: ['curl', 'busybox'],
  https: ['curl'],
  ftp: ['curl', 'lftp', 'busybox'],
  scp: ['scp', 'sshpass'],
  sftp: ['scp', 'sshpass'],
};
/** A tty's canonical-mode line holds 4095 characters; longer lines are cut. */
const MAX_LINE = 4000;
const EXIT_MARK = 'tbfs-exit=';

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[\w./:@%+=,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function clientOf(request: CopyRequest): string {
  const protocol = request.remote.protocol;
  return stringOption(request, 'client', CLIENTS[protocol]) ?? CLIENTS[protocol][0]!;
}

function policyOf(protocol: Protocol, client: string): CredentialPolicy {
  if (protocol === 'tftp') return 'none';
  if (client === 'busybox') return protocol === 'http' ? 'url' : 'command';
  if (client === 'sshpass') return 'command';
  return 'prompt';
}

function unsupported(client: string, what: string): never {
  throw new FileServerError('ERR_UNSUPPORTED_PROTOCOL', `The linux client ${client} cannot ${what}`);
}

/** The command words for one client and direction. */
function words(request: CopyRequest, client: string, local: string): string[] {
  const { remote, direction } = request;
  const get = direction === 'to-device';
  const iface =
    request.sourceInterface === undefined ? undefined : token('source interface', request.sourceInterface);
  const needsNoInterface = () => {
    if (iface !== undefined) unsupported(client, `choose a source interface for ${remote.protocol}`);
  };
  const host = remote.host;
  const port = String(remote.port);
  const path = remote.path;
  switch (`${remote.protocol}/${client}`) {
    case 'tftp/tftp':
      needsNoInterface();
      return [
        'tftp',
        '-m',
        'binary',
        host,
        port,
        '-c',
        get ? 'get' : 'put',
        ...(get ? [path, local] : [local, path]),
      ];
    case 'tftp/busybox':
      needsNoInterface();
      return ['busybox', 'tftp', get ? '-g' : '-p', '-l', local, '-r', path, host, port];
    case 'http/busybox':
      needsNoInterface();
      if (!get) unsupported('busybox wget', 'upload');
      return ['busybox', 'wget', '-q', '-O', local, deviceUrl(remote, 'url')];
    case 'ftp/busybox':
      needsNoInterface();
      assertPlainFtpAccepted('linux', remote, 'busybox');
      return [
        'busybox',
        get ? 'ftpget' : 'ftpput',
        '-u',
        remote.username ?? 'anonymous',
        '-p',
        remote.password ?? '',
        '-P',
        port,
        host,
        ...(get ? [local, path] : [path, local]),
      ];
    case 'tftp/curl':
    case 'http/curl':
    case 'https/curl':
    case 'ftp/curl': {
      const auth = remote.protocol !== 'tftp' && remote.username !== undefined ? ['-u', remote.username] : [];
      const url = deviceUrl({ ...remote, username: undefined, password: undefined }, 'none');
      return [
        'curl',
        '-sS',
        // No globbing: the brackets of an IPv6 address are literal.
        '-g',
        ...(remote.protocol === 'tftp' ? [] : ['--fail']),
        ...(iface === undefined ? [] : ['--interface', iface]),
        // FTPS: TLS before the login, whatever the server would accept.
        ...(remote.protocol === 'ftp' && remote.ftpTls !== undefined ? ['--ssl-reqd'] : []),
        // A pinned key stands in for the certificate authority a self-signed certificate lacks.
        ...((remote.protocol === 'https' || remote.ftpTls !== undefined) && remote.publicKeyPin !== undefined
          ? ['--insecure', '--pinnedpubkey', remote.publicKeyPin]
          : []),
        ...auth,
        ...(!get && remote.protocol === 'ftp' ? ['--ftp-create-dirs'] : []),
        ...(get ? ['-o', local] : ['-T', local]),
        url,
      ];
    }
    case 'ftp/lftp': {
      needsNoInterface();
      assertPlainFtpAccepted('linux', remote, 'lftp');
      const script = [
        'set net:max-retries 2',
        'set net:reconnect-interval-base 1',
        'set net:timeout 20',
        'set xfer:clobber on',
        `open -u ${lftpQuote(remote.username ?? 'anonymous')} -p ${port} ${lftpQuote(host)}`,
        get
          ? `get ${lftpQuote(path)} -o ${lftpQuote(local)}`
          : `put ${lftpQuote(local)} -o ${lftpQuote(path)}`,
      ].join('; ');
      return ['lftp', '-c', script];
    }
    case 'scp/scp':
    case 'sftp/scp':
    case 'scp/sshpass':
    case 'sftp/sshpass': {
      const user = remote.username ?? '';
      const target = `${user}@${host.includes(':') ? `[${host}]` : host}:${path}`;
      const scp = [
        'scp',
        remote.protocol === 'scp' ? '-O' : '-s',
        '-q',
        '-P',
        port,
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'LogLevel=ERROR',
        '-o',
        'PubkeyAuthentication=no',
        '-o',
        'NumberOfPasswordPrompts=1',
        ...(iface === undefined ? [] : ['-o', `BindInterface=${iface}`]),
        ...(get ? [target, local] : [local, target]),
      ];
      return client === 'sshpass' ? ['sshpass', '-p', remote.password ?? '', ...scp] : scp;
    }
    default:
      return unsupported(client, `do ${remote.protocol}`);
  }
}

/** lftp's own command language takes double quotes with backslash escapes. */
function lftpQuote(word: string): string {
  return /^[\w./:@%+=,-]+$/.test(word) ? word : `"${word.replace(/["\\]/g, '\\$&')}"`;
}

function dialogFor(remote: RemoteFile): Dialog {
  if (remote.password === undefined) return [];
  return [
    { name: 'host key', pattern: /continue connecting \(yes\/no[^)]*\)\?\s*$/i, answer: 'yes', max: 1 },
    { name: 'password', pattern: /password[^\n]*:\s*$/i, answer: remote.password, secret: true, max: 1 },
  ];
}

/** The Linux builder. */
export const linuxBuilder: CopyCommandBuilder = {
  os: 'linux',
  protocols: PROTOCOLS,
  maxCommandLength: MAX_LINE,
  standardPortOnly: [],
  defaultProtocol: 'scp',
  configMode: undefined,
  session: {
    // No history file (a password may be on a command line), English messages, no paging.
    setup: ['unset HISTFILE', 'export LC_ALL=C PAGER=cat'],
    promptPattern: GENERIC_PROMPT,
    enable: false,
  },
  credentialPolicy(protocol, options) {
    return policyOf(
      protocol,
      clientOf({
        direction: 'to-device',
        remote: { protocol, host: '', port: STANDARD_PORTS[protocol], path: '' },
        deviceFile: '',
        options,
      }),
    );
  },
  build(request: CopyRequest): CopyPlan {
    const { remote, direction } = request;
    assertProtocol('linux', PROTOCOLS, remote.protocol);
    const client = clientOf(request);
    const deviceFile =
      direction === 'to-device' ? deviceTarget(request.deviceFile, remote.path) : request.deviceFile;
    // Downloads land under a temporary name and are renamed when complete: a failed copy
    // leaves neither a partial file nor (tftp-hpa creates it first) an empty one.
    const part = `${deviceFile}.tbfs-part`;
    const toDevice = direction === 'to-device';
    let argv = words(request, client, toDevice ? part : deviceFile);
    if (request.vrf !== undefined && request.vrf !== false)
      argv = ['ip', 'vrf', 'exec', token('vrf', request.vrf), ...argv];
    let core = argv.map(shellQuote).join(' ');
    // tftp-hpa exits 0 after a failure: its messages decide instead.
    if (client === 'tftp')
      core = `${core} 2>&1 | awk '{print} /^Error code|[Tt]imed out/{bad=1} END{exit bad}'`;
    const [file, temp] = [shellQuote(deviceFile), shellQuote(part)];
    const refuse =
      toDevice && request.overwrite === false
        ? `[ -e ${file} ]; then echo 'File exists' >&2; false; elif `
        : '';
    const guard = toDevice
      ? `if ${refuse}${core}; then mv -f ${temp} ${file}; else rm -f ${temp}; false; fi`
      : core;
    const command = `${guard}; echo "${EXIT_MARK}$?"`;
    const secrets = secretsOf(request);
    assertLength('linux', command, MAX_LINE, secrets);
    const prompts = policyOf(remote.protocol, client) === 'prompt' ? dialogFor(remote) : [];
    return {
      command,
      dialog: prompts,
      secrets,
      timeoutMs: COPY_TIMEOUT_MS,
      deviceFile,
      remotePath: reportedPath(remote.path),
      check(output) {
        const status = new RegExp(`${EXIT_MARK}(\\d+)`).exec(output);
        const text = output.replace(new RegExp(`\\n?${EXIT_MARK}\\d+\\s*$`), '');
        if (!status) throw copyFailed('linux', command, output, secrets, 'failed');
        if (status[1] !== '0') {
          const reason =
            /File exists/.test(text) && request.overwrite === false ? 'exists' : failureReason(text);
          throw copyFailed('linux', command, text, secrets, reason);
        }
        return { confirmed: true, bytes: undefined };
      },
    };
  },
};
