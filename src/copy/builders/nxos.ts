/**
 * Cisco NX-OS: `copy <url> <device-path> [compact] [use-kstack] vrf <name>`, the VRF
 * defaulting to `management` (give `vrf: false` to leave it out).
 *
 * ftp, scp and sftp carry the user in the URL and answer the password prompt; scp and sftp
 * take a non-standard port as ` port <n>`; http and https carry the credentials in the URL. Options:
 * `compact` and `useKstack` (booleans).
 * @module
 */
import { STANDARD_PORTS } from '../../transfer.js';
import { CISCO_CREDENTIALS, type CiscoSpec, ciscoBuilder, iosConfigMode } from './cisco.js';
import { booleanOption, deviceUrl, GENERIC_PROMPT } from './common.js';
import type { CopyCommandBuilder } from './types.js';

const credentials = CISCO_CREDENTIALS;

/** @internal */
export const nxosSpec: CiscoSpec = {
  os: 'nxos',
  protocols: ['tftp', 'ftp', 'http', 'https', 'scp', 'sftp'],
  maxCommandLength: 1024,
  standardPortOnly: [],
  defaultVrf: 'management',
  credentials,
  session: {
    setup: ['terminal length 0', 'terminal width 511'],
    promptPattern: GENERIC_PROMPT,
    enable: false,
  },
  configMode: iosConfigMode(),
  sourceInterfaceConfig: {
    tftp: 'ip tftp source-interface',
    ftp: 'ip ftp source-interface',
    http: 'ip http source-interface',
    https: 'ip http source-interface',
    scp: 'ip ssh source-interface',
    sftp: 'ip ssh source-interface',
  },
  rules: {
    failure:
      /%\s*Error|^\s*Error\b|copy failed|Invalid command|Syntax error|Transfer of file aborted|No such file|Permission denied|timed out/im,
    success: /Copy complete/i,
  },
  command({ request, deviceFile, vrf }) {
    const { remote } = request;
    const ssh = remote.protocol === 'scp' || remote.protocol === 'sftp';
    const url = deviceUrl(remote, credentials[remote.protocol], { withPort: !ssh });
    const [from, to] = request.direction === 'to-device' ? [url, deviceFile] : [deviceFile, url];
    const compact = booleanOption(request, 'compact') ? ' compact' : '';
    const kstack = booleanOption(request, 'useKstack') ? ' use-kstack' : '';
    const port = ssh && remote.port !== STANDARD_PORTS[remote.protocol] ? ` port ${remote.port}` : '';
    return `copy ${from} ${to}${compact}${kstack}${vrf === undefined ? '' : ` vrf ${vrf}`}${port}`;
  },
};

/** The NX-OS builder. */
export const nxosBuilder: CopyCommandBuilder = ciscoBuilder(nxosSpec);
