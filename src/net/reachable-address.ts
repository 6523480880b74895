/**
 * Finds the local IP address that devices can reach: one of the {@link AddressOptions}, or a
 * documented default when none is given.
 * @module
 */
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import { FileServerError } from '../errors.js';
import { log } from '../log.js';
import { raceSignal } from '../util/abort.js';

/** Ways to choose the address a server binds to. Give at most one. */
export interface AddressOptions {
  /** An explicit local IP (IPv4 or IPv6; `0.0.0.0`/`::` bind every interface). */
  address?: string;
  /** IPv4 or IPv6 CIDR (a bare IP means /32 or /128): the one host address inside it. */
  subnet?: string;
  /** A network interface name (e.g. `eth1`): its first IPv4 address, else its first IPv6 one. */
  interface?: string;
  /** A device's IP: the local address the kernel routes toward it (no packet is sent). */
  reachableFrom?: string;
  /**
   * A live connection to the device, such as the `net.Socket` under an SSH or telnet session:
   * its `localAddress` is by definition an address the device reaches.
   */
  via?: {
    /**
     * The connection's local address (`::ffff:a.b.c.d` is taken as `a.b.c.d`); undefined once
     * closed, which throws ERR_INVALID_OPTIONS.
     */
    readonly localAddress?: string | undefined;
  };
}

/** Where a chosen address came from. */
export type AddressSource =
  | 'address'
  | 'subnet'
  | 'interface'
  | 'reachableFrom'
  | 'via'
  | 'environment'
  | 'default';

/** The address chosen for a server, and why. */
export interface ResolvedAddress {
  /** The IP address to bind (an IPv6 link-local one carries its `%interface` zone), without brackets. */
  readonly address: string;
  /** IP version of `address`. */
  readonly family: 4 | 6;
  /** Which option (or fallback: environment variable, default route) chose the address. */
  readonly source: AddressSource;
  /** One sentence saying why this address was chosen. */
  readonly reason: string;
  /** The interface that holds the address, when it is a local one. */
  readonly interface: string | undefined;
}

/** Environment variable that sets the address when no option does. */
export const ADDRESS_ENV = 'TESTBED_FILESERVER_ADDRESS';

/** Options of {@link resolveAddress}. */
export interface ResolveAddressOptions {
  /** Aborting stops a pending route lookup and rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
}

const keys = ['address', 'subnet', 'interface', 'reachableFrom', 'via'] as const;

/**
 * Resolves the address a server should bind to. With none of the {@link AddressOptions} given:
 * the `TESTBED_FILESERVER_ADDRESS` environment variable, else the source address of the host's
 * IPv4 default route, else 127.0.0.1.
 */
export async function resolveAddress(
  options: AddressOptions,
  { signal }: ResolveAddressOptions = {},
): Promise<ResolvedAddress> {
  signal?.throwIfAborted();
  const given = keys.filter((k) => options[k] !== undefined);
  if (given.length > 1) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `Give only one of ${given.join(', ')} to choose the address`,
    );
  }
  const resolved = await resolveOne(options, signal);
  log.net('address %s (%s)', resolved.address, resolved.reason);
  return resolved;
}

async function resolveOne(
  options: AddressOptions,
  signal: AbortSignal | undefined,
): Promise<ResolvedAddress> {
  if (options.address !== undefined) {
    const address = parseIp(options.address, 'address');
    return found(address, 'address', `explicit address ${address}`);
  }
  if (options.subnet !== undefined) return bySubnet(options.subnet);
  if (options.interface !== undefined) return byInterface(options.interface);
  if (options.reachableFrom !== undefined) {
    const device = parseIp(options.reachableFrom, 'reachableFrom');
    const address = await raceSignal(routeSource(device), signal);
    return found(address, 'reachableFrom', `the kernel routes toward ${device} from ${address}`);
  }
  if (options.via !== undefined) {
    const local = options.via.localAddress;
    if (!local) {
      throw new FileServerError('ERR_INVALID_OPTIONS', '`via` has no localAddress: is the connection open?');
    }
    const address = unmapV4(local);
    return found(address, 'via', `local end of the live connection (${address})`);
  }
  const env = process.env[ADDRESS_ENV];
  if (env) return found(parseIp(env, ADDRESS_ENV), 'environment', `${ADDRESS_ENV}=${env}`);
  try {
    // A documentation address (RFC 5737): connect() on UDP only consults the routing table.
    const address = await raceSignal(routeSource('192.0.2.1'), signal);
    return found(address, 'default', `default: source address of the IPv4 default route (${address})`);
  } catch {
    return found(
      '127.0.0.1',
      'default',
      'default: no IPv4 default route on this host, so loopback 127.0.0.1',
    );
  }
}

function found(address: string, source: AddressSource, reason: string): ResolvedAddress {
  const bare = address.split('%')[0]!;
  const family = net.isIPv6(bare) ? 6 : 4;
  const owner = hostAddresses().find((a) => a.address === bare);
  return { address, family, source, reason, interface: owner?.interface };
}

function parseIp(value: string, option: string): string {
  const bare = value.split('%')[0]!;
  if (net.isIP(bare) === 0) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `${option} must be an IP address, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** An address of this host with its interface. */
interface HostAddress {
  readonly interface: string;
  readonly address: string;
  readonly family: 4 | 6;
  readonly scopeid: number | undefined;
}

function hostAddresses(): HostAddress[] {
  const out: HostAddress[] = [];
  for (const [name, infos] of Object.entries(os.networkInterfaces())) {
    for (const info of infos ?? []) {
      out.push({
        interface: name,
        address: info.address,
        family: info.family === 'IPv6' ? 6 : 4,
        scopeid: info.family === 'IPv6' ? info.scopeid : undefined,
      });
    }
  }
  return out;
}

/** An IPv6 link-local address needs its interface as scope to be bound. */
function bindable(a: HostAddress): string {
  return a.family === 6 && a.address.toLowerCase().startsWith('fe80:')
    ? `${a.address}%${a.interface}`
    : a.address;
}

function listing(addresses: HostAddress[]): string {
  return addresses.map((a) => `${a.address} (${a.interface})`).join(', ') || 'none';
}

/** Parses `a.b.c.d/nn`, `x::y/nn` or a bare IP into a BlockList. @internal */
export function parseCidr(cidr: string): { list: net.BlockList; family: 4 | 6; text: string } {
  const [ip = '', prefixText, extra] = cidr.trim().split('/');
  const family = net.isIP(ip);
  const max = family === 6 ? 128 : 32;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (
    family === 0 ||
    extra !== undefined ||
    !/^\d*$/.test(prefixText ?? '') ||
    !(prefix >= 0 && prefix <= max)
  ) {
    throw new FileServerError('ERR_INVALID_OPTIONS', `Not a CIDR subnet: ${JSON.stringify(cidr)}`);
  }
  const list = new net.BlockList();
  const type = family === 6 ? 'ipv6' : 'ipv4';
  list.addSubnet(ip, prefix, type);
  return { list, family: family as 4 | 6, text: `${ip}/${prefix}` };
}

function bySubnet(subnet: string): ResolvedAddress {
  const { list, family, text } = parseCidr(subnet);
  const all = hostAddresses();
  const matches = all.filter(
    (a) => a.family === family && list.check(a.address, family === 6 ? 'ipv6' : 'ipv4'),
  );
  if (matches.length === 0) {
    throw new FileServerError(
      'ERR_NO_REACHABLE_ADDRESS',
      `No address of this host lies in ${text}. Host addresses: ${listing(all)}`,
      { details: { subnet: text, hostAddresses: all.map((a) => a.address) } },
    );
  }
  if (matches.length > 1) {
    throw new FileServerError(
      'ERR_AMBIGUOUS_ADDRESS',
      `Several addresses of this host lie in ${text}: ${listing(matches)}. Give a narrower subnet or an address.`,
      { details: { subnet: text, candidates: matches.map((a) => a.address) } },
    );
  }
  const match = matches[0]!;
  return found(bindable(match), 'subnet', `the only host address in ${text} (${match.interface})`);
}

function byInterface(name: string): ResolvedAddress {
  const all = hostAddresses();
  const own = all.filter((a) => a.interface === name);
  if (own.length === 0) {
    const names = [...new Set(all.map((a) => a.interface))].join(', ');
    throw new FileServerError(
      'ERR_NO_REACHABLE_ADDRESS',
      `No interface ${JSON.stringify(name)} with an address on this host. Interfaces: ${names}`,
      { details: { interface: name } },
    );
  }
  const rank = (a: HostAddress) => (a.family === 4 ? 0 : a.address.toLowerCase().startsWith('fe80:') ? 2 : 1);
  const best = [...own].sort((a, b) => rank(a) - rank(b))[0]!;
  return found(
    bindable(best),
    'interface',
    `first ${best.family === 4 ? 'IPv4' : 'IPv6'} address of ${name}`,
  );
}

/** The source address the kernel would use toward `destination`. No packet is sent. @internal */
export async function routeSource(destination: string): Promise<string> {
  const family = net.isIPv6(destination.split('%')[0]!) ? 'udp6' : 'udp4';
  const socket = dgram.createSocket(family);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(9, destination, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return unmapV4(socket.address().address);
  } catch (error) {
    throw new FileServerError('ERR_NO_REACHABLE_ADDRESS', `No route from this host toward ${destination}`, {
      cause: error,
    });
  } finally {
    socket.close();
  }
}

function unmapV4(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** True for `0.0.0.0` and `::`. @internal */
export function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}
