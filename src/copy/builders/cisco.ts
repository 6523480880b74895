/**
 * What IOS-XE, NX-OS and IOS-XR share: `copy <source> <destination>` with a dialog of
 * `[confirm]`s and filename questions, `%Error` messages, and source interfaces set in the
 * configuration.
 * @internal
 * @module
 */
import type { Protocol } from '../../transfer.js';
import type { DialogStep } from '../device.js';
import {
  assertLength,
  assertPlainFtpAccepted,
  assertProtocol,
  assertStandardPort,
  COPY_TIMEOUT_MS,
  deviceTarget,
  type OutputRules,
  readOutput,
  reportedPath,
  secretsOf,
  splitDevicePath,
  token,
} from './common.js';
import type {
  ConfigLine,
  ConfigMode,
  CopyCommandBuilder,
  CopyPlan,
  CopyRequest,
  CredentialPolicy,
  SessionProfile,
} from './types.js';

/**
 * Where Cisco CLIs take credentials: http and https in the URL; ftp, scp and sftp with the user
 * in the URL and the password at the prompt (IOS-XE differs for ftp: it never prompts).
 * @internal
 */
export const CISCO_CREDENTIALS = {
  tftp: 'none',
  ftp: 'prompt',
  http: 'url',
  https: 'url',
  scp: 'prompt',
  sftp: 'prompt',
} as const;
/** The parts of a copy command a platform assembles. @internal */
export interface CommandParts {
  readonly request: CopyRequest;
  /** The device file (to-device: possibly only its folder, when the name is answered at a prompt). */
  readonly deviceFile: string;
  /** VRF after defaults, or undefined. */
  readonly vrf: string | undefined;
}

/** One Cisco platform. @internal */
export interface CiscoSpec {
  readonly os: string;
  readonly protocols: readonly Protocol[];
  readonly maxCommandLength: number;
  readonly standardPortOnly: readonly Protocol[];
  readonly defaultVrf: string | undefined;
  readonly credentials: Readonly<Record<Protocol, CredentialPolicy>>;
  readonly session: SessionProfile;
  readonly configMode: ConfigMode;
  /** Configuration line prefixes that set the source interface, per protocol. */
  readonly sourceInterfaceConfig: Readonly<Partial<Record<Protocol, string>>>;
  readonly rules: OutputRules;
  /** The command text. */
  command(parts: CommandParts): string;
}

/** IOS-style configuration mode. @internal */
export function iosConfigMode(commit?: string): ConfigMode {
  return {
    enter: 'configure terminal',
    ...(commit === undefined ? {} : { commit }),
    exit: 'end',
    show: (prefix) => `show running-config | include ^${prefix}`,
    remove: (line) => `no ${line}`,
  };
}

/** Prompts every Cisco copy may ask. @internal */
export function ciscoDialog(
  request: CopyRequest,
  destinationName: string,
  vrf: string | undefined,
): DialogStep[] {
  const { remote } = request;
  const overwrite = request.overwrite !== false;
  const steps: DialogStep[] = [
    { name: 'remote host', pattern: /Address or name of remote host \[[^\]\n]*\]\?\s*$/i, answer: '' },
    { name: 'source filename', pattern: /Source filename \[[^\]\n]*\]\?\s*$/i, answer: '' },
    {
      name: 'destination filename',
      pattern: /Destination filename \[[^\]\n]*\]\?\s*$/i,
      answer: destinationName,
    },
    // IOS-style [confirm] takes Enter or a single key; a stray newline would answer the next prompt.
    {
      name: 'erase',
      pattern: /Erase \S+ before copying\?\s*\[confirm\]\s*$/i,
      answer: 'n',
      newline: false,
      max: 1,
    },
    {
      name: 'overwrite',
      pattern: /over ?write\??\s*\[confirm\]\s*$/i,
      answer: overwrite ? '' : 'n',
      newline: overwrite,
      max: 1,
    },
    {
      name: 'overwrite',
      pattern: /overwrite\s*\(y\/n\)\??\s*\[[yn]\]\s*$/i,
      answer: overwrite ? 'y' : 'n',
      max: 1,
    },
    { name: 'confirm', pattern: /\[confirm\]\s*$/i, answer: '' },
    {
      name: 'host key',
      pattern: /continue connecting[^\n]*\(yes\/no[^)\n]*\)\??\s*$/i,
      answer: 'yes',
      max: 1,
    },
    { name: 'vrf', pattern: /Enter vrf[^\n]*:\s*$/i, answer: vrf ?? '', max: 1 },
  ];
  if (remote.username !== undefined) {
    steps.push({
      name: 'username',
      pattern: /(?:user ?name|login)[^\n]*:\s*$/i,
      answer: remote.username,
      max: 1,
    });
  }
  if (remote.password !== undefined) {
    steps.push({
      name: 'password',
      pattern: /password[^\n]*:\s*$/i,
      answer: remote.password,
      secret: true,
      max: 1,
    });
  }
  return steps;
}

/** Builds a Cisco platform's builder from its spec. @internal */
export function ciscoBuilder(spec: CiscoSpec): CopyCommandBuilder {
  const { os } = spec;
  return {
    os,
    protocols: spec.protocols,
    maxCommandLength: spec.maxCommandLength,
    standardPortOnly: spec.standardPortOnly,
    defaultProtocol: 'scp',
    session: spec.session,
    configMode: spec.configMode,
    credentialPolicy: (protocol) => spec.credentials[protocol],
    build(request: CopyRequest): CopyPlan {
      const { remote, direction } = request;
      assertProtocol(os, spec.protocols, remote.protocol);
      assertPlainFtpAccepted(os, remote);
      assertStandardPort(os, spec.standardPortOnly, remote);
      token('device path', request.deviceFile);
      const vrf =
        request.vrf === false
          ? undefined
          : request.vrf === undefined
            ? spec.defaultVrf
            : token('vrf', request.vrf);
      const secrets = secretsOf(request);
      const toDevice = direction === 'to-device';
      const deviceFile = toDevice ? deviceTarget(request.deviceFile, remote.path) : request.deviceFile;
      const { folder, name } = splitDevicePath(deviceFile);
      let command = spec.command({ request, deviceFile, vrf });
      // Too long for the CLI: name only the folder and answer the file name at the prompt (pyATS does the same).
      if (toDevice && command.length > spec.maxCommandLength && folder !== deviceFile) {
        command = spec.command({ request, deviceFile: folder, vrf });
      }
      assertLength(os, command, spec.maxCommandLength, secrets);
      const config = sourceInterfaceLines(spec, request);
      return {
        command,
        dialog: ciscoDialog(request, toDevice ? name : '', vrf),
        secrets,
        timeoutMs: COPY_TIMEOUT_MS,
        deviceFile,
        remotePath: reportedPath(remote.path),
        ...(config.length === 0 ? {} : { config }),
        check: (output) => readOutput(spec.rules, os, command, output, secrets),
      };
    },
  };
}

function sourceInterfaceLines(spec: CiscoSpec, request: CopyRequest): ConfigLine[] {
  if (request.sourceInterface === undefined) return [];
  const iface = token('source interface', request.sourceInterface);
  const prefix = spec.sourceInterfaceConfig[request.remote.protocol];
  if (prefix === undefined) return [];
  return [{ line: `${prefix} ${iface}`, prefix }];
}
