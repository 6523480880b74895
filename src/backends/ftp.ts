/**
 * FTP on ftp-srv 4.6.3, tamed for embedding: no process signal handlers, logs to our debuglog,
 * a jailed file system with atomic uploads, our own data connections (advertised address, a
 * passive port window per server, active mode back to the client only, TLS), explicit FTPS with
 * a certificate made at start, and a stop that releases every socket and timer in bounded time.
 * @internal
 * @module
 */
import { once } from 'node:events';
import type net from 'node:net';
import tls from 'node:tls';
import { credentialsMatch } from '../credentials.js';
import { FileServerError } from '../errors.js';
import { Teardown } from '../util/teardown.js';
import type { Backend, BackendContext, RunningBackend } from './backend.js';
import { certificateFacts, checkTlsOption, serverIdentity, type TlsOption } from './certificate.js';
import type { DataSettings } from './ftp/data-channel.js';
import { JailedFileSystem } from './ftp/file-system.js';
import { createFtpServer, type FtpConnection } from './ftp/ftp-srv.js';
import { bunyanAdapter } from './ftp/logger.js';
import { type PortRange, reservePassiveWindow } from './ftp/passive-ports.js';
import { FtpSession } from './ftp/session.js';
import { listen, within } from './listening.js';
import { optionReader } from './options.js';

/** Options under `ftp` of {@link FileServerOptions}. */
export interface FtpBackendOptions {
  /**
   * Ports passive data connections may use, e.g. the range a firewall lets through
   * (default `[49152, 65535]`). Each server takes a window of {@link passivePortCount} ports
   * from it that no other server of this process uses.
   */
  passivePortRange?: readonly [min: number, max: number];
  /** Ports in each server's passive window (default 32, capped to the range). */
  passivePortCount?: number;
  /**
   * Explicit FTPS (`AUTH TLS`, RFC 4217) with a certificate made at start or your own (see
   * {@link TlsOption}). The certificate, its SHA-256 fingerprint and a curl `--pinnedpubkey`
   * value go in the info and the testbed entry. Default off.
   */
  tls?: TlsOption;
  /** With `tls`: refuse login and transfers before `AUTH TLS` (default true). */
  requireTls?: boolean;
  /** Allow active mode (PORT/EPRT, connections back to the client only); default true. */
  activeMode?: boolean;
  /** Close a control connection silent this long, unless a transfer runs (default 300 000 ms). */
  idleTimeoutMs?: number;
  /** Wait this long for a data connection, and close one silent this long (default 30 000 ms). */
  dataTimeoutMs?: number;
  /** Simultaneous control connections (default 64). */
  maxConnections?: number;
  /** Failed logins after which a control connection is closed (default 3). */
  maxFailedLogins?: number;
  /** Text of the 220 greeting (default `testbed-fileserver FTP server ready`). */
  greeting?: string;
}

interface Resolved {
  passivePortRange: PortRange;
  passivePortCount: number;
  tls: FtpBackendOptions['tls'];
  requireTls: boolean;
  activeMode: boolean;
  idleTimeoutMs: number;
  dataTimeoutMs: number;
  maxConnections: number;
  maxFailedLogins: number;
  greeting: string;
}

const KNOWN = [
  'passivePortRange',
  'passivePortCount',
  'tls',
  'requireTls',
  'activeMode',
  'idleTimeoutMs',
  'dataTimeoutMs',
  'maxConnections',
  'maxFailedLogins',
  'greeting',
] as const;

function readOptions(raw: Readonly<Record<string, unknown>>): Resolved {
  const { options: o, fail, integer, flag } = optionReader<FtpBackendOptions>('ftp', 'FTP', KNOWN, raw);
  const range: unknown = o.passivePortRange ?? [49152, 65535];
  const [min = Number.NaN, max = Number.NaN] = Array.isArray(range) ? (range as number[]) : [];
  if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 1024 && max <= 65535 && min <= max)) {
    fail('passivePortRange must be [min, max] with 1024 <= min <= max <= 65535');
  }
  const tlsOption = o.tls ?? false;
  checkTlsOption(tlsOption, fail);
  if (o.greeting !== undefined && (typeof o.greeting !== 'string' || /[\r\n]/.test(o.greeting))) {
    fail('greeting must be one line of text');
  }
  return {
    passivePortRange: { min, max },
    passivePortCount: integer('passivePortCount', 32, 1, 65535),
    tls: tlsOption,
    requireTls: flag('requireTls', true),
    activeMode: flag('activeMode', true),
    idleTimeoutMs: integer('idleTimeoutMs', 300_000, 1),
    dataTimeoutMs: integer('dataTimeoutMs', 30_000, 1),
    maxConnections: integer('maxConnections', 64, 1),
    maxFailedLogins: integer('maxFailedLogins', 3, 1),
    greeting: o.greeting ?? 'testbed-fileserver FTP server ready',
  };
}

/** @internal */
export const ftpBackend: Backend = {
  listens: true,
  async start(ctx: BackendContext): Promise<RunningBackend> {
    const o = readOptions(ctx.options);
    const credentials = ctx.credentials;
    if (!credentials) throw new FileServerError('ERR_INVALID_OPTIONS', 'FTP always needs credentials');
    const cleanup = new Teardown();
    try {
      const window = reservePassiveWindow(o.passivePortRange, o.passivePortCount);
      cleanup.defer('passive window', () => window.release());
      const identity = o.tls
        ? await serverIdentity(o.tls, { advertised: ctx.advertisedAddress, bind: ctx.bindAddress })
        : undefined;
      const data: DataSettings = {
        bindAddress: ctx.bindAddress,
        advertisedAddress: ctx.advertisedAddress,
        window,
        timeoutMs: o.dataTimeoutMs,
        activeMode: o.activeMode,
        secureContext: identity && tls.createSecureContext({ key: identity.key, cert: identity.cert }),
        log: ctx.log,
      };
      const ftp = createFtpServer({
        url: 'ftp://127.0.0.1:0', // unused: we listen ourselves and handle the data connections
        anonymous: false,
        greeting: o.greeting,
        log: bunyanAdapter(ctx.log, [credentials.password]),
        tls: identity ? { key: identity.key, cert: identity.cert } : false,
        timeout: 0, // ftp-srv would also stretch a stray timer to this length; the session has its own
        blacklist: [],
      });
      cleanup.defer('ftp-srv listeners', () => ftp.removeAllListeners());
      ftp.server.maxConnections = o.maxConnections;
      const sessions = new Map<FtpConnection, FtpSession>();
      const settings = {
        data,
        idleTimeoutMs: o.idleTimeoutMs,
        requireTls: identity !== undefined && o.requireTls,
        readOnly: ctx.readOnly,
        maxFailedLogins: o.maxFailedLogins,
      };
      ftp.on('connect', ({ connection }: { connection: FtpConnection }) => {
        sessions.set(
          connection,
          new FtpSession(ftp, connection, settings, () => sessions.delete(connection)),
        );
      });
      ftp.on(
        'login',
        (
          {
            connection,
            username,
            password,
          }: { connection: FtpConnection; username: string; password: string },
          resolve: (result: { fs: JailedFileSystem }) => void,
          reject: (error: Error) => void,
        ) => {
          const session = sessions.get(connection);
          if (!session) return reject(new Error('Connection closed'));
          if (!credentialsMatch({ username, password }, credentials)) {
            ctx.log('failed login from %s as %j', session.peer.address, username);
            session.loginFailed();
            return reject(new Error('Login incorrect'));
          }
          ctx.log('login from %s', session.peer.address);
          resolve({ fs: new JailedFileSystem(connection, ctx, session) });
        },
      );
      ftp.on('client-error', ({ context, error }: { context: string; error: Error }) =>
        ctx.log('client error (%s): %s', context, error?.message),
      );
      ftp.on('server-error', ({ error }: { error: Error }) => ctx.log('server error: %s', error?.message));
      await listen(ftp.server, ctx.bindAddress, ctx.port);
      const address = ftp.server.address() as net.AddressInfo;
      let closing: Promise<void> | undefined;
      return {
        port: address.port,
        extra: {
          passivePorts: [window.min, window.max],
          activeMode: o.activeMode,
          ...(identity && {
            tls: 'explicit',
            requireTls: settings.requireTls,
            ...certificateFacts(identity),
          }),
        },
        close({ graceMs }) {
          closing ??= (async () => {
            const closed = once(ftp.server, 'close');
            ftp.server.close();
            await ctx.transfers.drain(graceMs);
            for (const session of [...sessions.values()]) session.destroy();
            await within(closed, 2000);
            await ctx.transfers.drain(2000);
            await cleanup.run();
          })();
          return closing;
        },
      };
    } catch (error) {
      await cleanup.run().catch(() => {});
      throw error;
    }
  },
};
