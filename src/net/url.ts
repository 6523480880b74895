/**
 * URL pieces shared by servers, testbed entries and copy helpers.
 * @module
 */
import net from 'node:net';

/** An address as a URL host: IPv6 in brackets with a scope's `%` escaped as `%25`. */
export function urlHost(address: string): string {
  const bare = address.split('%')[0]!;
  return net.isIPv6(bare) ? `[${address.replace('%', '%25')}]` : address;
}

/** `protocol://host:port/path` with `path` percent-encoded per segment; no credentials. */
export function formatUrl(protocol: string, address: string, port: number, path = ''): string {
  const encoded = path
    .split('/')
    .filter((s) => s !== '')
    .map(encodeURIComponent)
    .join('/');
  return `${protocol}://${urlHost(address)}:${port}/${encoded}`;
}
