/**
 * An embedded SSH server on ssh2 for `protocol: 'sftp'` and `protocol: 'scp', embedded: true`:
 * password authentication with the server's random credentials (keyboard-interactive answering
 * the same password, for devices that only do that), fresh Ed25519 and RSA host keys whose
 * fingerprints go in the testbed entry, the SFTP subsystem and legacy `scp -t`/`scp -f`, all
 * jailed to the root. No shell, no other command, no forwarding of any kind. Stop ends every
 * connection, not only the listener (ssh2's Server#close only stops accepting).
 * @internal
 * @module
 */
import net, { type Socket } from 'node:net';
import ssh2, { type AuthContext, type ClientInfo, type Connection, type ServerConfig } from 'ssh2';
import { credentialsMatch } from '../credentials.js';
import { FileServerError } from '../errors.js';
import type { Backend, BackendContext, RunningBackend } from './backend.js';
import { listen, within } from './listening.js';
import { optionReader } from './options.js';
import { ChannelIo } from './ssh/channel-io.js';
import { describeHostKey, generateHostKeys, type HostKey } from './ssh/host-keys.js';
import { runScp, type SshFileContext } from './ssh/scp.js';
import { parseScpCommand } from './ssh/scp-command.js';
import { serveSftp } from './ssh/sftp.js';

const { Server } = ssh2;

/** Options under `ssh` of {@link FileServerOptions} (embedded scp and sftp). */
export interface SshBackendOptions {
  /**
   * Private host keys (PEM or OpenSSH format) to present instead of fresh ones, e.g. to keep
   * the fingerprint a device already trusts. Default: a new Ed25519 and a new RSA key per server.
   */
  hostKeys?: ReadonlyArray<string | Buffer>;
  /** Size of the generated RSA host key (default 2048, as pyATS; 3072 or 4096 for stricter peers). */
  rsaBits?: number;
  /**
   * Algorithm lists handed to ssh2, by category (`kex`, `cipher`, `serverHostKey`, `hmac`,
   * `compress`): an array replaces ssh2's defaults, e.g. to offer old algorithms to old devices.
   */
  algorithms?: Partial<Record<'kex' | 'cipher' | 'serverHostKey' | 'hmac' | 'compress', readonly string[]>>;
  /** Also accept keyboard-interactive authentication with the same password (default true). */
  keyboardInteractive?: boolean;
  /** Failed authentications after which a connection is closed (default 6). */
  maxAuthTries?: number;
  /** Time allowed from connecting to being authenticated (default 60 000 ms). */
  authTimeoutMs?: number;
  /** Close a connection that has been silent this long (default 300 000 ms). */
  idleTimeoutMs?: number;
  /** Simultaneous connections (default 64). */
  maxConnections?: number;
  /** A banner sent before authentication (many devices print it). */
  banner?: string;
}

type Resolved = Required<Omit<SshBackendOptions, 'hostKeys' | 'algorithms' | 'banner'>> & {
  hostKeys: SshBackendOptions['hostKeys'] | undefined;
  algorithms: SshBackendOptions['algorithms'] | undefined;
  banner: string | undefined;
};

const KNOWN = [
  'hostKeys',
  'rsaBits',
  'algorithms',
  'keyboardInteractive',
  'maxAuthTries',
  'authTimeoutMs',
  'idleTimeoutMs',
  'maxConnections',
  'banner',
] as const;

function readOptions(raw: Readonly<Record<string, unknown>>): Resolved {
  const { options: o, fail, integer, flag } = optionReader<SshBackendOptions>('ssh', 'SSH', KNOWN, raw);
  if (o.hostKeys !== undefined && (!Array.isArray(o.hostKeys) || o.hostKeys.length === 0)) {
    fail('hostKeys must be a non-empty array of private keys');
  }
  if (o.banner !== undefined && typeof o.banner !== 'string') fail('banner must be a string');
  if (o.algorithms !== undefined && (typeof o.algorithms !== 'object' || o.algorithms === null)) {
    fail('algorithms must be an object of algorithm lists');
  }
  return {
    hostKeys: o.hostKeys,
    rsaBits: integer('rsaBits', 2048, 2048, 8192),
    algorithms: o.algorithms,
    keyboardInteractive: flag('keyboardInteractive', true),
    maxAuthTries: integer('maxAuthTries', 6, 1),
    authTimeoutMs: integer('authTimeoutMs', 60_000, 1),
    idleTimeoutMs: integer('idleTimeoutMs', 300_000, 1),
    maxConnections: integer('maxConnections', 64, 1),
    banner: o.banner,
  };
}

/** Handles one SSH connection from handshake to close. */
function serveConnection(client: Connection, socket: Socket, ctx: BackendContext, o: Resolved): void {
  const credentials = ctx.credentials!;
  const peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
  const files: SshFileContext = { ...ctx, peer };
  const methods: AuthContext['method'][] = o.keyboardInteractive
    ? ['password', 'keyboard-interactive']
    : ['password'];
  let failures = 0;
  const gone = new AbortController();
  socket.once('close', () => gone.abort());
  const authTimer = setTimeout(() => {
    ctx.log('%s did not authenticate in time', peer.address);
    socket.destroy();
  }, o.authTimeoutMs);
  socket.once('close', () => clearTimeout(authTimer));
  client.on('error', (error) => ctx.log('connection from %s: %s', peer.address, error.message));

  const decide = (auth: AuthContext, username: string, password: string | undefined) => {
    if (password !== undefined && credentialsMatch({ username, password }, credentials)) {
      auth.accept();
      return;
    }
    failures++;
    ctx.log('failed %s authentication from %s as %j', auth.method, peer.address, username);
    if (failures >= o.maxAuthTries) {
      client.end();
      return;
    }
    auth.reject(methods);
  };
  client.on('authentication', (auth) => {
    if (auth.method === 'password') return decide(auth, auth.username, auth.password);
    if (auth.method === 'keyboard-interactive' && o.keyboardInteractive) {
      auth.prompt([{ prompt: 'Password: ', echo: false }], (answers) =>
        decide(auth, auth.username, answers[0]),
      );
      return;
    }
    auth.reject(methods); // none, publickey, hostbased: tell the client what works
  });

  client.on('ready', () => {
    clearTimeout(authTimer);
    ctx.log('%s authenticated', peer.address);
    client.on('session', (accept) => {
      const session = accept();
      session.on('sftp', (acceptSftp) => serveSftp(acceptSftp(), files));
      session.on('exec', (acceptExec, _reject, info) => {
        const channel = acceptExec();
        const command = parseScpCommand(info.command);
        if (!command) {
          ctx.log('refused exec %j from %s', info.command, peer.address);
          channel.stderr.write('This server only runs scp -t/-f (and the sftp subsystem)\n');
          channel.exit(1);
          channel.end();
          return;
        }
        void runScp(new ChannelIo(channel, gone.signal), command, files).then((status) => {
          if (channel.destroyed || gone.signal.aborted) return;
          try {
            channel.exit(status);
            channel.end();
          } catch (error) {
            ctx.log('scp exit: %s', (error as Error).message);
          }
        });
      });
      // pty, shell, env, x11, agent forwarding and other subsystems have no listener: ssh2
      // refuses them. The same holds for tcpip/streamlocal channels and forwarding requests.
    });
  });
}

/** @internal */
export const sshBackend: Backend = {
  listens: true,
  async start(ctx: BackendContext): Promise<RunningBackend> {
    const o = readOptions(ctx.options);
    if (!ctx.credentials)
      throw new FileServerError('ERR_INVALID_OPTIONS', 'The SSH server always needs credentials');
    const keys: HostKey[] = o.hostKeys
      ? o.hostKeys.map((key) => describeHostKey(key))
      : await generateHostKeys(o.rsaBits);
    ctx.signal.throwIfAborted();
    const config: ServerConfig = {
      hostKeys: keys.map((k) => k.privateKey),
      ident: 'testbed-fileserver',
      ...(o.banner !== undefined && { banner: o.banner }),
      ...(o.algorithms && { algorithms: o.algorithms as NonNullable<ServerConfig['algorithms']> }),
    };
    const ssh = new Server(config);
    ssh.on('error', (error: Error) => ctx.log('ssh server: %s', error.message));
    const sockets = new Map<Socket, Connection | undefined>();
    // ssh2 names the peer of a new connection; that finds the socket we injected.
    const byPeer = new Map<string, Socket>();
    ssh.on('connection', (client: Connection, info: ClientInfo) => {
      const socket = byPeer.get(`${info.ip}:${info.port}`);
      if (!socket) {
        client.end();
        return;
      }
      sockets.set(socket, client);
      serveConnection(client, socket, ctx, o);
    });
    const listener = net.createServer((socket) => {
      if (sockets.size >= o.maxConnections) {
        socket.destroy();
        return;
      }
      const peer = `${socket.remoteAddress}:${socket.remotePort}`;
      sockets.set(socket, undefined);
      byPeer.set(peer, socket);
      socket.once('close', () => {
        sockets.delete(socket);
        byPeer.delete(peer);
      });
      socket.on('error', (error) => ctx.log('socket: %s', error.message));
      socket.setTimeout(o.idleTimeoutMs, () => socket.destroy());
      ssh.injectSocket(socket);
    });
    await listen(listener, ctx.bindAddress, ctx.port);
    const port = (listener.address() as net.AddressInfo).port;
    let closing: Promise<void> | undefined;
    return {
      port,
      extra: {
        ...(ctx.protocol === 'scp' && { embedded: true }),
        hostKeys: keys.map((k) => k.publicKey),
        hostKeyFingerprints: Object.fromEntries(keys.map((k) => [k.type, k.fingerprint])),
      },
      close({ graceMs }) {
        closing ??= (async () => {
          const closed = new Promise((resolve) => listener.close(resolve));
          await ctx.transfers.drain(graceMs);
          // A polite disconnect first; whatever is still there after a moment is cut.
          for (const client of sockets.values()) client?.end();
          const gone = Promise.all(
            [...sockets.keys()].map((s) =>
              s.destroyed ? undefined : new Promise((r) => s.once('close', r)),
            ),
          );
          await within(gone, 250);
          for (const socket of sockets.keys()) socket.destroy();
          await within(closed, 2000);
          await ctx.transfers.drain(2000);
          ssh.removeAllListeners();
        })();
        return closing;
      },
    };
  },
};
