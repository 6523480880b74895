/**
 * Example device copy commands for a running server, written by the same per-OS builders that
 * copyToDevice and copyFromDevice use, so what the CLI shows is what the helpers would type.
 * @internal
 * @module
 */
import { readdirSync } from 'node:fs';
import { ftpTlsOf } from '../copy/builders/common.js';
import { copyBuilderFor } from '../copy/builders/index.js';
import type { RemoteFile } from '../copy/builders/types.js';
import type { FileServerInfo } from '../file-server.js';

/** Operating systems shown by default, in this order. */
export const DEFAULT_OSES = ['iosxe', 'nxos', 'iosxr', 'junos', 'linux'] as const;

/** Where each platform keeps files, for the examples. */
const deviceFolder: Record<string, string> = {
  iosxe: 'bootflash:',
  ios: 'flash:',
  nxos: 'bootflash:',
  iosxr: 'harddisk:',
  junos: '/var/tmp/',
  linux: '/tmp/',
};

/** A file to use in the examples: the first visible regular file at the top of the root. */
export function exampleFile(root: string): string {
  try {
    const files = readdirSync(root, { withFileTypes: true })
      .filter((entry) => entry.isFile() && !entry.name.startsWith('.') && /^[\w.+-]+$/.test(entry.name))
      .map((entry) => entry.name)
      .sort();
    return files[0] ?? 'image.bin';
  } catch {
    return 'image.bin';
  }
}

/**
 * Lines such as `iosxe  copy http://u:p@198.18.0.1:8080/ios.bin bootflash:`: one per OS and
 * direction (device to server only when the server takes uploads). A platform that cannot
 * reach this server as it runs (IOS-XE's tftp client needs port 69) gets a `#` line saying why.
 */
export function deviceCommands(info: FileServerInfo, oses: readonly string[], file: string): string[] {
  const remote: RemoteFile = {
    protocol: info.protocol,
    host: info.address,
    port: info.port,
    path: file,
    username: info.username,
    password: info.password,
    publicKeyPin: info.publicKeyPin,
    ftpTls: ftpTlsOf(info),
  };
  const width = Math.max(...oses.map((os) => os.length));
  const lines: string[] = [];
  for (const os of oses) {
    const label = os.padEnd(width);
    const folder = deviceFolder[os.toLowerCase()] ?? '/tmp/';
    const directions = info.readOnly ? (['to-device'] as const) : (['to-device', 'from-device'] as const);
    for (const direction of directions) {
      try {
        const deviceFile = direction === 'to-device' ? folder : `${folder}${file}`;
        lines.push(`${label}  ${copyBuilderFor(os).build({ direction, remote, deviceFile }).command}`);
      } catch (error) {
        lines.push(`${label}  # ${(error as Error).message}`);
        break;
      }
    }
  }
  return lines;
}
