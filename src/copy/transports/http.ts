/**
 * HTTP with fetch (undici): GET streams into the sink, PUT streams the body with its length;
 * Basic auth in a header (fetch refuses credentials in URLs).
 * @internal
 * @module
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileServerError } from '../../errors.js';
import type { ResolvedUrl } from '../url.js';
import { formatConcreteUrl } from '../url.js';
import type { Transport } from './types.js';

function urlOf(target: ResolvedUrl): string {
  return formatConcreteUrl('http', target.host, target.port, target.path);
}

function headersOf(target: ResolvedUrl): Record<string, string> {
  if (target.username === undefined || target.password === undefined) return {};
  const token = Buffer.from(`${target.username}:${target.password}`).toString('base64');
  return { authorization: `Basic ${token}` };
}

async function fail(target: ResolvedUrl, response: Response, action: string): Promise<never> {
  const text = (await response.text().catch(() => '')).slice(0, 200).trim();
  const status = response.status;
  const code =
    status === 404
      ? 'ERR_NOT_FOUND'
      : status === 409 || status === 412
        ? 'ERR_FILE_EXISTS'
        : 'ERR_TRANSFER_FAILED';
  const why = status === 401 ? 'login refused' : `${status} ${response.statusText}`;
  throw new FileServerError(
    code,
    `HTTP ${action} ${target.displayUrl} failed: ${why}${text ? ` (${text})` : ''}`,
    {
      details: { status, url: target.displayUrl },
    },
  );
}

function request(target: ResolvedUrl, init: RequestInit, action: string): Promise<Response> {
  return fetch(urlOf(target), {
    ...init,
    headers: { ...headersOf(target), ...(init.headers as Record<string, string>) },
  }).catch((error: unknown) => {
    if ((error as Error).name === 'AbortError') throw error;
    const cause = (error as { cause?: Error }).cause ?? error;
    throw new FileServerError(
      'ERR_TRANSFER_FAILED',
      `HTTP ${action} ${target.displayUrl} failed: ${(cause as Error).message}`,
      {
        cause: error,
      },
    );
  });
}

/** @internal */
export const httpTransport: Transport = {
  async download(target, sink, { signal, onSize }) {
    const response = await request(target, { signal }, 'download of');
    if (response.status !== 200 || !response.body) await fail(target, response, 'download of');
    const length = response.headers.get('content-length');
    onSize(length === null ? undefined : Number(length));
    await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), sink, {
      signal,
    });
  },
  async upload(target, source, { size, signal, onWriteStart }) {
    onWriteStart();
    const response = await request(
      target,
      {
        method: 'PUT',
        body: source as unknown as RequestInit['body'],
        duplex: 'half',
        signal,
        headers: size === undefined ? {} : { 'content-length': String(size) },
      } as RequestInit,
      'upload to',
    );
    if (response.status < 200 || response.status > 299) await fail(target, response, 'upload to');
    await response.body?.cancel();
  },
};
