/**
 * Cisco IOS-XE (and classic IOS): `copy <url> <device-path> [vrf <name>]`.
 *
 * Credentials go in the URL for ftp, http and https (IOS never prompts for them); scp and sftp carry
 * the user in the URL and answer the password prompt. The tftp client only uses port 69. A
 * command longer than 253 characters names only the destination folder and answers the file
 * name at the `Destination filename` prompt. Source interfaces: `ip tftp|ftp|ssh
 * source-interface`, `ip http client source-interface` (http and https).
 * @module
 */

import { CISCO_CREDENTIALS, type CiscoSpec, ciscoBuilder, iosConfigMode } from './cisco.js';
import { deviceUrl, GENERIC_PROMPT } from './common.js';
import type { CopyCommandBuilder } from './types.js';

const credentials = { ...CISCO_CREDENTIALS, ftp: 'url' } as const;

/** @internal */
export const iosxeSpec: CiscoSpec = {
  os: 'iosxe',
  protocols: ['tftp', 'ftp', 'http', 'https', 'scp', 'sftp'],
  maxCommandLength: 253,
  standardPortOnly: ['tftp'],
  defaultVrf: undefined,
  credentials,
  session: {
    setup: ['terminal length 0', 'terminal width 511'],
    promptPattern: GENERIC_PROMPT,
    enable: true,
  },
  configMode: iosConfigMode(),
  sourceInterfaceConfig: {
    tftp: 'ip tftp source-interface',
    ftp: 'ip ftp source-interface',
    http: 'ip http client source-interface',
    https: 'ip http client source-interface',
    scp: 'ip ssh source-interface',
    sftp: 'ip ssh source-interface',
  },
  rules: {
    failure:
      /%\s*Error|^\s*Error\b|copy failed|Invalid input detected|%\s*Incomplete command|%\s*Ambiguous command|\baborted\b/im,
    success: /(\d+) bytes copied/i,
  },
  command({ request, deviceFile, vrf }) {
    const url = deviceUrl(request.remote, credentials[request.remote.protocol]);
    const [from, to] = request.direction === 'to-device' ? [url, deviceFile] : [deviceFile, url];
    return `copy ${from} ${to}${vrf === undefined ? '' : ` vrf ${vrf}`}`;
  },
};

/** The IOS-XE builder (also used for `ios`). */
export const iosxeBuilder: CopyCommandBuilder = ciscoBuilder(iosxeSpec);
