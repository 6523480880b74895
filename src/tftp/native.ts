/**
 * The optional native datagram path (src/native/udp.c, compiled at install when a C compiler is
 * there): one sendmsg per TFTP window with UDP segmentation offload instead of one per datagram,
 * and a receive loop that hands JavaScript each datagram in a Buffer of its own size.
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
  /** Reads the socket `fd` (through a duplicate descriptor) and calls `onDatagram` for every
   * datagram: its first `length` bytes, in a Buffer of its own, or with `transient` (64 KiB) in
   * that Buffer, overwritten by the next datagram. Node's own receiving must be stopped first.
   * A negative number is -errno. */
  watch(
    fd: number,
    onDatagram: (datagram: Buffer, address: string, port: number, answered: boolean, length: number) => void,
    transient?: Buffer,
  ): WatchHandle | number;
  /** When an ACK of wire block `block` arrives from `address`:`port`, sends `packet[0, length)`
   * there before calling onDatagram (with `answered` true). One-shot; false if it cannot. */
  arm(
    handle: WatchHandle,
    block: number,
    packet: Buffer,
    length: number,
    address: string,
    port: number,
  ): boolean;
  /** Withdraws an armed reply. */
  disarm(handle: WatchHandle): void;
  /** Stops the watch and closes its descriptor; idempotent. */
  unwatch(handle: WatchHandle): void;
  /** Whether the watch keeps the event loop alive (it does by default). */
  refWatch(handle: WatchHandle, ref: boolean): void;
}

/** An active {@link NativeUdp.watch}. */
export type WatchHandle = { readonly __watch: unique symbol };

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
