/**
 * The optional native datagram path (src/native/udp.c, compiled at install when a C compiler is
 * there): one sendmsg per TFTP window with UDP segmentation offload instead of one per datagram.
 * Linux only; without it, or with `TESTBED_FILESERVER_NATIVE=0` in the environment, every
 * datagram goes through node:dgram as before. Only the transport uses it.
 * @module
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { log } from '../log.js';

/** The addon's functions (see src/native/udp.c). */
export interface NativeUdp {
  /** Sends `buffers[first, first + count)` (each `lengths[i]` bytes) to `address`:`port` in one
   * sendmsg, cut into datagrams of `segment` bytes (0: one datagram). Bytes sent, or -errno. */
  sendBatch(
    fd: number,
    address: string,
    port: number,
    segment: number,
    buffers: readonly Buffer[],
    lengths: ArrayLike<number>,
    first: number,
    count: number,
  ): number;
}

/** Where the install step puts the addon: dist/native, seen from dist/tftp or from src/tftp. */
const CANDIDATES = ['../native/udp.node', '../../dist/native/udp.node'];

function load(): NativeUdp | undefined {
  if (process.platform !== 'linux') return undefined;
  if (process.env.TESTBED_FILESERVER_NATIVE === '0') {
    log.tftp('native datagram path off (TESTBED_FILESERVER_NATIVE=0): node:dgram only');
    return undefined;
  }
  const require = createRequire(import.meta.url);
  for (const candidate of CANDIDATES) {
    const file = fileURLToPath(new URL(candidate, import.meta.url));
    if (!existsSync(file)) continue;
    try {
      const addon = require(file) as NativeUdp;
      log.tftp('native datagram path loaded from %s', file);
      return addon;
    } catch (error) {
      log.tftp('native datagram path %s not loaded: %s', file, (error as Error).message);
    }
  }
  log.tftp('no native datagram path (src/native/build.mjs builds it): node:dgram only');
  return undefined;
}

/** The addon, when it is built and allowed. */
export const nativeUdp: NativeUdp | undefined = load();
