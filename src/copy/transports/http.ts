/**
 * HTTP and HTTPS on node:http and node:https: GET streams into the sink, PUT streams the body
 * with its length; Basic auth in a header. HTTPS trusts what the entry says (see trust.ts).
 * @internal
 * @module
 */
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tls from 'node:tls';
import { FileServerError } from '../../errors.js';
import type { ResolvedUrl } from '../url.js';
import { formatConcreteUrl } from '../url.js';
import { certificateToTrust } from './trust.js';
import type { Transport } from './types.js';

function failure(target: ResolvedUrl, action: string, why: string, cause?: unknown): FileServerError {
  return new FileServerError(
    'ERR_TRANSFER_FAILED',
    `${target.protocol.toUpperCase()} ${action} ${target.displayUrl} failed: ${why}`,
    cause === undefined ? {} : { cause },
  );
}

/** The certificate the server presents, unverified (the caller checks it against a pin). */
async function presentedCertificate(target: ResolvedUrl, signal: AbortSignal | undefined, action: string) {
  const socket = tls.connect({
    host: target.host,
    port: target.port,
    rejectUnauthorized: false,
    ...(net.isIP(target.host) ? {} : { servername: target.host }),
  });
  try {
    await once(socket, 'secureConnect', signal ? { signal } : {});
    return socket.getPeerX509Certificate();
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw signal?.reason ?? error;
    throw failure(target, action, (error as Error).message, error);
  } finally {
    socket.destroy();
  }
}

/** Sends a request and resolves with the response head; connection failures are typed. */
async function send(
  target: ResolvedUrl,
  method: string,
  extraHeaders: Record<string, string>,
  signal: AbortSignal | undefined,
  action: string,
): Promise<{ request: http.ClientRequest; response: Promise<http.IncomingMessage> }> {
  const headers = { ...extraHeaders };
  if (target.username !== undefined && target.password !== undefined) {
    headers.authorization = `Basic ${Buffer.from(`${target.username}:${target.password}`).toString('base64')}`;
  }
  const secure = target.protocol === 'https';
  const ca = secure
    ? await certificateToTrust(
        target.entry,
        () => presentedCertificate(target, signal, action),
        (why) => failure(target, action, why),
      )
    : undefined;
  const url = formatConcreteUrl(target.protocol, target.host, target.port, target.path);
  const request = (secure ? https : http).request(url, {
    method,
    headers,
    signal,
    agent: false, // one connection per copy, closed after it: nothing lingers
    ...(ca === undefined ? {} : { ca }),
  });
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    // `on`, not `once`: a second error (a reset after a refusal) must not go unhandled.
    request.on('error', (error) => {
      if (error.name === 'AbortError') reject(signal?.reason ?? error);
      else reject(failure(target, action, error.message, error));
    });
  });
  return { request, response };
}

async function fail(target: ResolvedUrl, response: http.IncomingMessage, action: string): Promise<never> {
  let text = '';
  try {
    for await (const chunk of response) {
      text += String(chunk);
      if (text.length >= 200) break;
    }
  } catch {
    // the reason is the status; the body is a bonus
  }
  response.destroy();
  text = text.slice(0, 200).trim();
  const status = response.statusCode ?? 0;
  const code =
    status === 404
      ? 'ERR_NOT_FOUND'
      : status === 409 || status === 412
        ? 'ERR_FILE_EXISTS'
        : 'ERR_TRANSFER_FAILED';
  const why = status === 401 ? 'login refused' : `${status} ${response.statusMessage ?? ''}`.trim();
  throw new FileServerError(
    code,
    `${target.protocol.toUpperCase()} ${action} ${target.displayUrl} failed: ${why}${text ? ` (${text})` : ''}`,
    { details: { status, url: target.displayUrl } },
  );
}

/** @internal */
export const httpTransport: Transport = {
  async download(target, sink: Writable, { signal, onSize }) {
    const { request, response } = await send(target, 'GET', {}, signal, 'download of');
    request.end();
    const res = await response;
    if (res.statusCode !== 200) await fail(target, res, 'download of');
    const length = res.headers['content-length'];
    onSize(length === undefined ? undefined : Number(length));
    await pipeline(res, sink, { signal });
  },
  async upload(target, source: Readable, { size, signal, onWriteStart }) {
    onWriteStart();
    const { request, response } = await send(
      target,
      'PUT',
      size === undefined ? {} : { 'content-length': String(size) },
      signal,
      'upload to',
    );
    // The server may answer (and close) before taking the whole body: a refusal. Its status is
    // the news then, not the broken pipe that sending the rest meets.
    const sent = pipeline(source, request, { signal });
    sent.catch(() => {});
    const res = await response;
    if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode > 299) {
      await fail(target, res, 'upload to');
    }
    await sent;
    res.resume();
  },
};
