/**
 * HTTP on node:http and HTTPS on node:https: GET/HEAD with Range, PUT/POST (raw or multipart) to
 * temporary files renamed into place, Basic auth on every method, folder listings, idle
 * timeouts, bounded stop. HTTPS presents a certificate made at start for the advertised address
 * (or the user's own).
 * @internal
 * @module
 */
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Backend, BackendContext, RunningBackend } from './backend.js';
import { certificateFacts, checkTlsOption, serverIdentity, type TlsOption } from './certificate.js';
import { serveDownload } from './http/download.js';
import { authorize, requestPath, sendError, sendFailure } from './http/respond.js';
import { precheckUpload, serveUpload } from './http/upload.js';
import { optionReader } from './options.js';

/** Options under `http` of {@link FileServerOptions}. */
export interface HttpBackendOptions {
  /** Close a connection that has been silent this long, mid-request or idle (default 30 000 ms). */
  idleTimeoutMs?: number;
  /** Time allowed to receive a request's headers (default 15 000 ms). */
  headersTimeoutMs?: number;
  /** Serve folder listings, HTML or JSON (`?format=json` or `Accept: application/json`); default true. */
  listings?: boolean;
  /**
   * `protocol: 'https'` only: the certificate, made at start for the advertised address
   * (default, ECDSA P-256; `{ keyType: 'rsa-2048' }` for old clients) or your own `{ key, cert }`
   * (see {@link TlsOption}). The certificate, its SHA-256 fingerprint and a curl
   * `--pinnedpubkey` value go in the info and the testbed entry.
   */
  tls?: Exclude<TlsOption, false>;
}

interface Resolved {
  idleTimeoutMs: number;
  headersTimeoutMs: number;
  listings: boolean;
  tls: Exclude<TlsOption, false> | undefined;
}

const KNOWN = ['idleTimeoutMs', 'headersTimeoutMs', 'listings', 'tls'] as const;

function readOptions(raw: Readonly<Record<string, unknown>>, secure: boolean): Resolved {
  const { options: o, fail, integer, flag } = optionReader<HttpBackendOptions>('http', 'HTTP', KNOWN, raw);
  if (o.tls !== undefined) {
    if (!secure) fail("tls is for protocol 'https'");
    if ((o.tls as unknown) === false) fail("tls cannot be false with protocol 'https'");
    checkTlsOption(o.tls, fail);
  }
  return {
    idleTimeoutMs: integer('idleTimeoutMs', 30_000, 1),
    headersTimeoutMs: integer('headersTimeoutMs', 15_000, 1),
    listings: flag('listings', true),
    tls: secure ? (o.tls ?? true) : undefined,
  };
}

const UPLOAD_METHODS = new Set(['PUT', 'POST']);
const ALLOW = 'GET, HEAD, PUT, POST';

async function handle(ctx: BackendContext, options: Resolved, req: IncomingMessage, res: ServerResponse) {
  if (!authorize(req, res, ctx.credentials)) return;
  const target = requestPath(req, res);
  if (!target) return;
  const method = req.method ?? 'GET';
  try {
    if (method === 'GET' || method === 'HEAD') {
      if (!options.listings && target.path.endsWith('/')) {
        sendError(res, 403, 'Folder listings are turned off');
        return;
      }
      await serveDownload(ctx, req, res, target.path, target.query);
    } else if (UPLOAD_METHODS.has(method)) {
      await serveUpload(ctx, req, res, target.path);
    } else {
      sendError(res, 405, `Method ${method} not allowed`, { allow: ALLOW });
    }
  } catch (error) {
    ctx.log(
      '%s %s from %s failed: %s',
      method,
      target.path,
      // The socket is gone (null) once the client hung up: never crash on logging that.
      req.socket?.remoteAddress,
      (error as Error).message,
    );
    // The body may still be on its way; do not keep the connection for another request.
    if (UPLOAD_METHODS.has(method) && !req.complete) res.setHeader('connection', 'close');
    sendFailure(res, error);
  }
}

/** Answers `Expect: 100-continue` only after auth and the upload pre-checks pass. */
function handleContinue(ctx: BackendContext, options: Resolved, req: IncomingMessage, res: ServerResponse) {
  if (!authorize(req, res, ctx.credentials)) return;
  if (UPLOAD_METHODS.has(req.method ?? '')) {
    try {
      precheckUpload(ctx, req);
    } catch (error) {
      res.setHeader('connection', 'close');
      sendFailure(res, error);
      return;
    }
  }
  res.writeContinue();
  void handle(ctx, options, req, res);
}

function listen(server: Server, ctx: BackendContext): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen({ host: ctx.bindAddress, port: ctx.port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** @internal */
export const httpBackend: Backend = {
  listens: true,
  async start(ctx: BackendContext): Promise<RunningBackend> {
    const options = readOptions(ctx.options, ctx.protocol === 'https');
    const identity = options.tls
      ? await serverIdentity(options.tls, { advertised: ctx.advertisedAddress, bind: ctx.bindAddress })
      : undefined;
    const sockets = new Set<Socket>();
    const serverOptions = {
      requestTimeout: 0, // large uploads may take long; the idle timeout below catches stalls
      headersTimeout: options.headersTimeoutMs,
      keepAliveTimeout: 5_000,
    };
    const server: Server = identity
      ? https.createServer({
          ...serverOptions,
          key: identity.key,
          cert: identity.cert,
          // A handshake that stalls is a slow request head (Node's default waits 120 s).
          handshakeTimeout: options.headersTimeoutMs,
        })
      : http.createServer(serverOptions);
    server.timeout = options.idleTimeoutMs;
    // For HTTPS, 'connection' is the TCP socket under TLS: destroying it ends the TLS one too.
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    server.on('request', (req, res) => void handle(ctx, options, req, res));
    server.on('checkContinue', (req, res) => handleContinue(ctx, options, req, res));
    server.on('clientError', (error, socket) => {
      ctx.log('client error: %s', error.message);
      if (socket.writable && !(error as NodeJS.ErrnoException).code?.startsWith('ECONNRESET')) {
        socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      } else {
        socket.destroy();
      }
    });
    // A failed or timed-out handshake: Node reports it but leaves the connection to us.
    server.on('tlsClientError', (error: Error, socket: Socket) => {
      ctx.log('TLS handshake from %s failed: %s', socket.remoteAddress, error.message);
      socket.destroy();
    });
    server.on('error', (error) => ctx.log('server error: %s', error.message));
    try {
      await listen(server, ctx);
    } catch (error) {
      server.close();
      throw error;
    }
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : ctx.port;
    let closing: Promise<void> | undefined;
    return {
      port,
      ...(identity && { extra: certificateFacts(identity) }),
      close({ graceMs }) {
        closing ??= (async () => {
          const closed = new Promise<void>((resolve) => server.close(() => resolve()));
          server.closeIdleConnections();
          await ctx.transfers.drain(graceMs);
          // Whatever still runs is aborted: uploads lose their temporary files, downloads end.
          server.closeAllConnections();
          for (const socket of sockets) socket.destroy();
          await closed;
          await ctx.transfers.drain(5_000);
        })();
        return closing;
      },
    };
  },
};
