/**
 * Answers that every HTTP handler shares: errors with a body, Basic auth, request paths.
 * @internal
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Credentials, credentialsMatch } from '../../credentials.js';
import { type ErrorCode, FileServerError } from '../../errors.js';
import type { Peer } from '../../transfer.js';

const statusByCode: Partial<Record<ErrorCode, number>> = {
  ERR_INVALID_OPTIONS: 400,
  ERR_TRANSFER_ABORTED: 400,
  ERR_PATH_OUTSIDE_ROOT: 403,
  ERR_READ_ONLY: 403,
  ERR_NOT_FOUND: 404,
  ERR_FILE_EXISTS: 409,
  ERR_FILE_TOO_LARGE: 413,
};

/** An HTTP status for an error thrown while serving. @internal */
export function statusFor(error: unknown): number {
  if (error instanceof FileServerError) return statusByCode[error.code] ?? 500;
  const sys = (error as NodeJS.ErrnoException).code;
  if (sys === 'EACCES' || sys === 'EPERM') return 403;
  if (sys === 'ENOENT' || sys === 'ENOTDIR') return 404;
  if (sys === 'EISDIR') return 409;
  if (sys === 'ENOSPC' || sys === 'EDQUOT') return 507;
  return 500;
}

/** Client-facing text for an error: our messages are safe to show; others are summarised. */
function publicMessage(status: number, error: unknown): string {
  if (error instanceof FileServerError) return error.message;
  return status === 500 ? 'Internal server error' : ((error as Error).message ?? 'Error');
}

/** Sends `status` with a short text body, unless headers already went out. @internal */
export function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${status} ${message}\n`;
  res.writeHead(status, {
    ...headers,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** Sends the status that fits `error`. @internal */
export function sendFailure(res: ServerResponse, error: unknown): void {
  const status = statusFor(error);
  sendError(res, status, publicMessage(status, error));
}

/** True when the request carries the right Basic credentials; otherwise answers 401. @internal */
export function authorize(
  req: IncomingMessage,
  res: ServerResponse,
  expected: Credentials | undefined,
): boolean {
  if (!expected) return true;
  const header = req.headers.authorization ?? '';
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (match) {
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (
      colon >= 0 &&
      credentialsMatch({ username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }, expected)
    ) {
      return true;
    }
  }
  sendError(res, 401, 'Authentication required', {
    'www-authenticate': 'Basic realm="testbed-fileserver", charset="UTF-8"',
  });
  return false;
}

/** The decoded path of a request, or undefined after answering 400 for malformed escapes. @internal */
export function requestPath(
  req: IncomingMessage,
  res: ServerResponse,
): { path: string; query: URLSearchParams } | undefined {
  const raw = req.url ?? '/';
  const queryAt = raw.indexOf('?');
  const pathPart = queryAt >= 0 ? raw.slice(0, queryAt) : raw;
  try {
    // Decoded %2F and %5C act as separators in safe-path, and a decoded `..` is refused there.
    const path = pathPart.split('/').map(decodeURIComponent).join('/');
    return { path, query: new URLSearchParams(queryAt >= 0 ? raw.slice(queryAt + 1) : '') };
  } catch {
    sendError(res, 400, 'Malformed percent-encoding in the path');
    return undefined;
  }
}

/** The remote end of a request, with IPv4-mapped IPv6 addresses shown as IPv4. @internal */
export function peerOf(req: IncomingMessage): Peer {
  // req.socket is null once the connection is gone, whatever its type says.
  const socket = req.socket as IncomingMessage['socket'] | null;
  const address = socket?.remoteAddress ?? '';
  return {
    address: address.startsWith('::ffff:') ? address.slice(7) : address,
    port: socket?.remotePort ?? 0,
  };
}
