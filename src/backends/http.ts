/**
 * HTTP on node:http: GET/HEAD with Range, PUT/POST (raw or multipart) to temporary files renamed
 * into place, Basic auth on every method, folder listings, idle timeouts, bounded stop.
 * @internal
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Backend, BackendContext, RunningBackend } from './backend.js';
import { serveDownload } from './http/download.js';
import { authorize, requestPath, sendError, sendFailure } from './http/respond.js';
import { precheckUpload, serveUpload } from './http/upload.js';

/** Options under `http` of {@link FileServerOptions}. */
export interface HttpBackendOptions {
  /** Close a connection that has been silent this long, mid-request or idle (default 30 000 ms). */
  idleTimeoutMs?: number;
  /** Time allowed to receive a request's headers (default 15 000 ms). */
  headersTimeoutMs?: number;
  /** Serve folder listings, HTML or JSON (`?format=json` or `Accept: application/json`); default true. */
  listings?: boolean;
}

function readOptions(raw: Readonly<Record<string, unknown>>): Required<HttpBackendOptions> {
  const o = raw as HttpBackendOptions;
  return {
    idleTimeoutMs: o.idleTimeoutMs ?? 30_000,
    headersTimeoutMs: o.headersTimeoutMs ?? 15_000,
    listings: o.listings ?? true,
  };
}

const UPLOAD_METHODS = new Set(['PUT', 'POST']);
const ALLOW = 'GET, HEAD, PUT, POST';

async function handle(
  ctx: BackendContext,
  options: Required<HttpBackendOptions>,
  req: IncomingMessage,
  res: ServerResponse,
) {
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
function handleContinue(
  ctx: BackendContext,
  options: Required<HttpBackendOptions>,
  req: IncomingMessage,
  res: ServerResponse,
) {
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
  standardPort: 80,
  listens: true,
  async start(ctx: BackendContext): Promise<RunningBackend> {
    const options = readOptions(ctx.options);
    const sockets = new Set<Socket>();
    const server = createServer({
      requestTimeout: 0, // large uploads may take long; the idle timeout below catches stalls
      headersTimeout: options.headersTimeoutMs,
      keepAliveTimeout: 5_000,
    });
    server.timeout = options.idleTimeoutMs;
    server.on('connection', (socket) => {
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
