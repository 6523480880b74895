/**
 * {@link copyToDevice}: the device fetches a file from a server, with its own copy command.
 * @module
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { FileServerError } from '../errors.js';
import { copyBuilderFor } from './builders/index.js';
import type { Device } from './device.js';
import {
  adHocSide,
  type DeviceCopyOptions,
  type DeviceCopyResult,
  namedServer,
  runDeviceCopy,
  startAdHocServer,
} from './device-copy.js';

/** Options of {@link copyToDevice}. */
export interface CopyToDeviceOptions extends DeviceCopyOptions {
  /**
   * With `server`: the file's path on that server (relative to its root). Without: a local file
   * of this host, served by a temporary read-only server for the length of the copy.
   */
  file: string;
  /** Where the file goes on the device: a file (`bootflash:ios.bin`, `/tmp/x`) or a folder (`bootflash:`, `/tmp/`). */
  destination: string;
}

/**
 * Has the device fetch a file: builds the OS's copy command (URL, credentials placed as the
 * platform wants them, VRF, source interface), runs it answering its prompts, maps errors in
 * the output to ERR_DEVICE_COMMAND_FAILED (with `details.reason` and `details.output`), and,
 * when the server is ours, waits for the server's own transfer event: success means the server
 * sent the whole file, not only that the device printed no error.
 *
 * Without `server`, a temporary server (protocol `options.protocol`, default `scp`) serves the
 * local `file`'s folder read-only, bound to the address the device's connection uses, and is
 * stopped before this returns. Never resolves with nothing: failures throw.
 *
 * ```ts
 * await copyToDevice(r1, { server: 'images', file: 'ios.bin', destination: 'bootflash:' });
 * await copyToDevice(r1, { protocol: 'http', file: './build/ios.bin', destination: 'bootflash:' });
 * ```
 */
export async function copyToDevice(device: Device, options: CopyToDeviceOptions): Promise<DeviceCopyResult> {
  if (typeof options?.file !== 'string' || options.file === '') {
    throw new FileServerError('ERR_INVALID_OPTIONS', 'copyToDevice needs file');
  }
  if (typeof options.destination !== 'string' || options.destination === '') {
    throw new FileServerError('ERR_INVALID_OPTIONS', 'copyToDevice needs destination (a device path)');
  }
  const builder = copyBuilderFor(device.os);
  if (options.server !== undefined) {
    const side = namedServer(device, { ...options, server: options.server }, options.file, 'download');
    return runDeviceCopy(device, builder, 'to-device', options.destination, side, options);
  }
  const local = path.resolve(options.file);
  const info = await stat(local).catch((error: unknown) => {
    throw new FileServerError('ERR_NOT_FOUND', `No such file: ${options.file}`, { cause: error });
  });
  if (!info.isFile()) throw new FileServerError('ERR_NOT_FOUND', `Not a file: ${options.file}`);
  await using server = await startAdHocServer(device, builder, options, {
    root: path.dirname(local),
    readOnly: true,
  });
  const side = adHocSide(server, path.basename(local), 'download', info.size);
  return await runDeviceCopy(device, builder, 'to-device', options.destination, side, options);
}
