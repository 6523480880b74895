/**
 * HTTP and HTTPS on node:http and node:https: GET streams into the sink, PUT streams the body
 * with its length; Basic auth in a header. HTTPS trusts the certificate the testbed entry
 * publishes (our servers' self-signed one) or, without one, the system's certificate
 * authorities; either way the certificate must name the address.
 * @internal
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileServerError } from '../../errors.js';
import type { ResolvedUrl } from '../url.js';
import { formatConcreteUrl } from '../url.js';
import type { Transport } from './types.js';

function requestOptions(target: ResolvedUrl, method: string, signal: AbortSignal | undefined) {
  const headers: Record<string, string> = {};
  if (target.username !== undefined && target.password !== undefined) {
    headers.authorization = `Basic ${Buffer.from(`${target.username}:${target.password}`).toString('base64')}`;
  }
  const certificate = target.entry.certificate;
  return {
    method,
    headers,
    signal,
    agent: false as const, // one connection per copy, closed after it: nothing lingers
    ...(target.protocol === 'https' && typeof certificate === 'string' ? { ca: certificate } : {}),
  };
}

/** Sends a request and resolves with the response head; connection failures are typed. */
function send(
  target: ResolvedUrl,
  method: string,
  headers: Record<string, string>,
  signal: AbortSignal | undefined,
  action: string,
): { request: http.ClientRequest; response: Promise<http.IncomingMessage> } {
  const options = requestOptions(target, method, signal);
  Object.assign(options.headers, headers);
  const url = formatConcreteUrl(target.protocol, target.host, target.port, target.path);
  const request = (target.protocol === 'https' ? https : http).request(url, options);
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    // `on`, not `once`: a second error (a reset after a refusal) must not go unhandled.
    request.on('error', (error) => {
      if (error.name === 'AbortError') reject(signal?.reason ?? error);
      else
        reject(
          new FileServerError(
            'ERR_TRANSFER_FAILED',
            `${target.protocol.toUpperCase()} ${action} ${target.displayUrl} failed: ${error.message}`,
            { cause: error },
          ),
        );
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
    const { request, response } = send(target, 'GET', {}, signal, 'download of');
    request.end();
    const res = await response;
    if (res.statusCode !== 200) await fail(target, res, 'download of');
    const length = res.headers['content-length'];
    onSize(length === undefined ? undefined : Number(length));
    await pipeline(res, sink, { signal });
  },
  async upload(target, source: Readable, { size, signal, onWriteStart }) {
    onWriteStart();
    const { request, response } = send(
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
