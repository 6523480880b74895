/**
 * Juniper Junos: `file copy <url> <device-path> [routing-instance <name>] [source-address <ip>]`.
 *
 * The password never goes in the URL (`user@` only); Junos asks for it. The VRF option maps to
 * `routing-instance`; Junos picks its source by address, so `options.sourceAddress` replaces
 * `sourceInterface`.
 * @module
 */
import { FileServerError } from '../../errors.js';
import type { Protocol } from '../../transfer.js';
import {
  assertLength,
  assertPlainFtpAccepted,
  assertProtocol,
  COPY_TIMEOUT_MS,
  deviceTarget,
  deviceUrl,
  readOutput,
  reportedPath,
  secretsOf,
  stringOption,
  token,
} from './common.js';
import type { CopyCommandBuilder, CopyPlan, CopyRequest } from './types.js';

const PROTOCOLS: readonly Protocol[] = ['tftp', 'ftp', 'http', 'scp', 'sftp'];
const MAX = 1024;

const rules = {
  failure:
    /^\s*error:|^\s*fetch:|file copy failed|No such file|not found|Permission denied|syntax error|unknown command|invalid/im,
  success: /(\d+) bytes|100% of/i,
};

/** The Junos builder. */
export const junosBuilder: CopyCommandBuilder = {
  os: 'junos',
  protocols: PROTOCOLS,
  maxCommandLength: MAX,
  standardPortOnly: [],
  defaultProtocol: 'scp',
  configMode: undefined,
  session: {
    setup: ['set cli screen-length 0', 'set cli screen-width 0'],
    promptPattern: /^[^\n]{0,120}[>#%] ?$/,
    enable: false,
  },
  credentialPolicy: (protocol) => (protocol === 'tftp' ? 'none' : 'prompt'),
  build(request: CopyRequest): CopyPlan {
    const { remote, direction } = request;
    assertProtocol('junos', PROTOCOLS, remote.protocol);
    assertPlainFtpAccepted('junos', remote);
    if (request.sourceInterface !== undefined) {
      throw new FileServerError(
        'ERR_INVALID_OPTIONS',
        'Junos chooses the source by address: pass options.sourceAddress instead of sourceInterface',
      );
    }
    if (direction === 'to-device' && request.overwrite === false) {
      throw new FileServerError(
        'ERR_INVALID_OPTIONS',
        'Junos file copy always replaces the destination: overwrite: false cannot be honoured',
      );
    }
    token('device path', request.deviceFile);
    const sourceAddress = stringOption(request, 'sourceAddress');
    const deviceFile =
      direction === 'to-device' ? deviceTarget(request.deviceFile, remote.path) : request.deviceFile;
    const url = deviceUrl(remote, remote.protocol === 'tftp' ? 'none' : 'prompt');
    const [from, to] = direction === 'to-device' ? [url, deviceFile] : [deviceFile, url];
    const vrf =
      request.vrf === undefined || request.vrf === false
        ? ''
        : ` routing-instance ${token('vrf', request.vrf)}`;
    const source =
      sourceAddress === undefined ? '' : ` source-address ${token('source address', sourceAddress)}`;
    const command = `file copy ${from} ${to}${vrf}${source}`;
    const secrets = secretsOf(request);
    assertLength('junos', command, MAX, secrets);
    return {
      command,
      dialog: [
        {
          name: 'host key',
          pattern: /continue connecting[^\n]*\(yes\/no[^)\n]*\)\??\s*$/i,
          answer: 'yes',
          max: 1,
        },
        ...(remote.password === undefined
          ? []
          : [
              {
                name: 'password',
                pattern: /password[^\n]*:\s*$/i,
                answer: remote.password,
                secret: true,
                max: 1,
              },
            ]),
      ],
      secrets,
      timeoutMs: COPY_TIMEOUT_MS,
      deviceFile,
      remotePath: reportedPath(remote.path),
      check: (output) => readOutput(rules, 'junos', command, output, secrets),
    };
  },
};
