/**
 * Cisco IOS-XR: `copy <url> <device-path> [vrf <name>]`, and the native
 * `scp user@host:path <device-path> [port <n>] [vrf <name>]` for scp.
 *
 * XR prompts for FTP credentials even when the URL holds them and then builds a broken URL
 * (genielibs#152), so ftp, scp and sftp put only the user in the URL and answer the password
 * prompt; http and https carry the credentials in the URL. Configuration changes are committed.
 * @module
 */
import { STANDARD_PORTS } from '../../transfer.js';
import { formatConcreteUrl } from '../url.js';
import { CISCO_CREDENTIALS, type CiscoSpec, ciscoBuilder, iosConfigMode } from './cisco.js';
import { deviceUrl, GENERIC_PROMPT } from './common.js';
import type { CopyCommandBuilder } from './types.js';

const credentials = CISCO_CREDENTIALS;

/** @internal */
export const iosxrSpec: CiscoSpec = {
  os: 'iosxr',
  protocols: ['tftp', 'ftp', 'http', 'https', 'scp', 'sftp'],
  maxCommandLength: 1024,
  standardPortOnly: [],
  defaultVrf: undefined,
  credentials,
  session: {
    setup: ['terminal length 0', 'terminal width 512'],
    promptPattern: GENERIC_PROMPT,
    enable: false,
  },
  configMode: { ...iosConfigMode('commit'), show: (prefix) => `show running-config | include ${prefix}` },
  sourceInterfaceConfig: {
    tftp: 'tftp client source-interface',
    ftp: 'ftp client source-interface',
    http: 'http client source-interface ipv4',
    https: 'http client source-interface ipv4',
    scp: 'ssh client source-interface',
    sftp: 'ssh client source-interface',
  },
  rules: {
    failure: /%\s*Error|^\s*Error\b|copy failed|failed|Invalid input detected|%\s*Incomplete command/im,
    success: /(\d+) bytes copied|\[OK\]|copy operation success|100%/i,
  },
  command({ request, deviceFile, vrf }) {
    const { remote } = request;
    const vrfSuffix = vrf === undefined ? '' : ` vrf ${vrf}`;
    if (remote.protocol === 'scp') {
      const host = remote.host.includes(':') ? `[${remote.host}]` : remote.host;
      const path = formatConcreteUrl('x', 'h', undefined, remote.path).slice('x://h/'.length);
      const far = `${remote.username ?? ''}@${host}:${path}`;
      const [from, to] = request.direction === 'to-device' ? [far, deviceFile] : [deviceFile, far];
      const port = remote.port === STANDARD_PORTS.scp ? '' : ` port ${remote.port}`;
      return `scp ${from} ${to}${port}${vrfSuffix}`;
    }
    const url = deviceUrl(remote, credentials[remote.protocol]);
    const [from, to] = request.direction === 'to-device' ? [url, deviceFile] : [deviceFile, url];
    return `copy ${from} ${to}${vrfSuffix}`;
  },
};

/** The IOS-XR builder. */
export const iosxrBuilder: CopyCommandBuilder = ciscoBuilder(iosxrSpec);
