/**
 * {@link copyFromDevice}: the device sends one of its files to a server, with its own copy
 * command.
 * @module
 */
import { copyFile, mkdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { FileServerError } from '../errors.js';
import { baseName, splitDevicePath } from './builders/common.js';
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

/** Options of {@link copyFromDevice}. */
export interface CopyFromDeviceOptions extends DeviceCopyOptions {
  /** The file on the device, e.g. `bootflash:running.cfg` or `/var/log/syslog`. */
  source: string;
  /**
   * With `server`: the path on that server (default: the device file's name). Without: where
   * the file lands on this host (a file path, or an existing folder to keep the device file's
   * name); required then.
   */
  file?: string;
}

/** What {@link copyFromDevice} did; for a temporary server also where the file now is. */
export interface CopyFromDeviceResult extends DeviceCopyResult {
  /** The local file, when a temporary server received it. */
  readonly localFile: string | undefined;
}

/**
 * Has the device send a file: builds and runs the OS's copy command like {@link copyToDevice},
 * and, when the server is ours, waits for the server's event saying the upload landed whole.
 *
 * Without `server`, a temporary writable server (default `scp`) bound to the address the
 * device reaches receives the file into its own temporary folder; the file is then moved to
 * `file` on this host and the server stopped. Never resolves with nothing: failures throw.
 *
 * ```ts
 * await copyFromDevice(r1, { server: 'uploads', source: 'bootflash:running.cfg', file: 'R1/running.cfg' });
 * await copyFromDevice(r1, { protocol: 'tftp', source: 'bootflash:crashinfo', file: './out/' });
 * ```
 */
export async function copyFromDevice(
  device: Device,
  options: CopyFromDeviceOptions,
): Promise<CopyFromDeviceResult> {
  if (typeof options?.source !== 'string' || options.source === '') {
    throw new FileServerError('ERR_INVALID_OPTIONS', 'copyFromDevice needs source (a device path)');
  }
  const builder = copyBuilderFor(device.os);
  const deviceName = baseName(splitDevicePath(options.source).name);
  if (options.server !== undefined) {
    const side = namedServer(
      device,
      { ...options, server: options.server },
      options.file ?? deviceName,
      'upload',
    );
    const result = await runDeviceCopy(device, builder, 'from-device', options.source, side, options);
    return { ...result, localFile: undefined };
  }
  if (options.file === undefined || options.file === '') {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      'copyFromDevice without a server needs file (where it lands on this host)',
    );
  }
  const destination = await localDestination(options.file, deviceName);
  if (options.overwrite === false && (await exists(destination))) {
    throw new FileServerError('ERR_FILE_EXISTS', `File exists: ${destination}`);
  }
  await using server = await startAdHocServer(device, builder, options, { readOnly: false });
  const remotePath = path.basename(destination);
  const side = adHocSide(server, remotePath, 'upload', undefined);
  const result = await runDeviceCopy(device, builder, 'from-device', options.source, side, options);
  await mkdir(path.dirname(destination), { recursive: true });
  await move(path.join(server.info.root, remotePath), destination);
  return { ...result, localFile: destination };
}

async function localDestination(file: string, deviceName: string): Promise<string> {
  const resolved = path.resolve(file);
  if (file.endsWith('/') || file.endsWith(path.sep)) return path.join(resolved, deviceName);
  const info = await stat(resolved).catch(() => undefined);
  return info?.isDirectory() ? path.join(resolved, deviceName) : resolved;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** rename, or copy and delete across file systems. */
async function move(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    // Copy under a temporary name first so that `to` appears whole or not at all.
    const temporary = `${to}.${process.pid}.tbfs-part`;
    try {
      await copyFile(from, temporary);
      await rename(temporary, to);
    } catch (copyError) {
      await unlink(temporary).catch(() => {});
      throw copyError;
    }
    await unlink(from);
  }
}
