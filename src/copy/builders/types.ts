/**
 * The shape every per-OS copy command builder has.
 * @module
 */
import type { Protocol } from '../../transfer.js';
import type { Dialog } from '../device.js';

/** Which way a device copy goes. */
export type CopyDirection = 'to-device' | 'from-device';

/**
 * Where a platform takes the credentials for a protocol:
 * - `url`: `user:password@` in the URL;
 * - `prompt`: `user@` in the URL (or an option), the password answered at a prompt;
 * - `command`: as command options (e.g. `sshpass -p`, `busybox ftpget -p`);
 * - `none`: the protocol has no credentials (tftp).
 */
export type CredentialPolicy = 'url' | 'prompt' | 'command' | 'none';

/** The file on the server side of a device copy, already resolved to an address. */
export interface RemoteFile {
  /** The protocol the device's client speaks to the server. */
  readonly protocol: Protocol;
  /** Server address (IPv6 without brackets). */
  readonly host: string;
  /** Server port; builders leave it out of the command when it is the protocol's standard one. */
  readonly port: number;
  /** Path on the server, relative to its root (a leading `/` makes it absolute). */
  readonly path: string;
  /** Login on the server; undefined for tftp. Placed per the builder's {@link CredentialPolicy}. */
  readonly username?: string | undefined;
  /** Password on the server; undefined for tftp. Hidden in logs and results (see {@link CopyPlan.secrets}). */
  readonly password?: string | undefined;
  /**
   * https: the server's public key pin (`sha256//<base64>`, from the testbed entry). Clients that
   * can check it (curl's `--pinnedpubkey`) trust exactly that key instead of a certificate
   * authority, which is how a device reaches a server with a self-signed certificate.
   */
  readonly publicKeyPin?: string | undefined;
  /**
   * ftp: the server speaks explicit TLS (FTPS), `required` when it refuses a login without it
   * (from the entry's `tls` and `requireTls`). Clients that can do TLS use it; the others are
   * refused with ERR_UNSUPPORTED_PROTOCOL when it is required.
   */
  readonly ftpTls?: 'required' | 'optional' | undefined;
}

/** Everything a builder needs to write one copy command. */
export interface CopyRequest {
  /** `to-device`: the device fetches `remote`; `from-device`: the device sends `deviceFile` to it. */
  readonly direction: CopyDirection;
  /** The server-side file, resolved to an address and credentials. */
  readonly remote: RemoteFile;
  /**
   * The device side: to-device, where the file goes (a folder such as `bootflash:` or `/tmp/`
   * gets the remote file's name); from-device, the file to send.
   */
  readonly deviceFile: string;
  /** VRF (routing instance on Junos). `false` leaves it out where the OS has a default (NX-OS). */
  readonly vrf?: string | false | undefined;
  /** Interface the device sends from (configured for the copy and restored afterwards on Cisco). */
  readonly sourceInterface?: string | undefined;
  /** Replace an existing file on the device (default true). */
  readonly overwrite?: boolean | undefined;
  /** OS-specific options, e.g. `{ client: 'busybox' }` (linux) or `{ compact: true }` (NX-OS). */
  readonly options?: Readonly<Record<string, unknown>> | undefined;
}

/** Why a device said a copy failed, read from its output. */
export type FailureReason =
  | 'timeout'
  | 'not-found'
  | 'permission'
  | 'no-space'
  | 'unreachable'
  | 'exists'
  | 'invalid-command'
  | 'failed';

/** One configuration line a copy needs, e.g. `ip tftp source-interface Gi1`. */
export interface ConfigLine {
  /** The line to configure. */
  readonly line: string;
  /** The part that identifies the setting (`ip tftp source-interface`), to find and restore an earlier value. */
  readonly prefix: string;
}

/** How a platform enters and leaves configuration mode and shows its configuration. */
export interface ConfigMode {
  /** The command that enters configuration mode (`configure terminal`). */
  readonly enter: string;
  /** Run before leaving (IOS-XR's `commit`). */
  readonly commit?: string;
  /** The command that leaves configuration mode (`end`); always run, also after a refused line. */
  readonly exit: string;
  /** The command that prints the configured lines starting with `prefix`. */
  show(prefix: string): string;
  /** The line that removes a setting. */
  remove(line: string): string;
}

/** A device copy, ready to run. */
export interface CopyPlan {
  /** The CLI command to run, credentials included where the platform takes them in the command. */
  readonly command: string;
  /** Prompts the command may ask and their answers. */
  readonly dialog: Dialog;
  /** Strings to hide in logs and errors (passwords in the command or answers). */
  readonly secrets: readonly string[];
  /** The command's timeout. */
  readonly timeoutMs: number;
  /** The file on the device (to-device: with the file name filled in). */
  readonly deviceFile: string;
  /** The server-side path the device will ask for, as the server reports it. */
  readonly remotePath: string;
  /** Configuration to apply for the copy and restore afterwards (source interface). */
  readonly config?: readonly ConfigLine[];
  /**
   * Reads the output: resolves with what it says (bytes when it tells), or throws
   * ERR_DEVICE_COMMAND_FAILED with the reason and the output.
   */
  check(output: string): CopyOutput;
}

/** What a device's output said about a copy that did not fail. */
export interface CopyOutput {
  /** The output had the platform's success message. */
  readonly confirmed: boolean;
  /** Bytes copied, when the output says. */
  readonly bytes: number | undefined;
}

/** Session settings for a platform's CLI. */
export interface SessionProfile {
  /** Commands run once after login (paging off, wide terminal). */
  readonly setup: readonly string[];
  /** Matches the prompt line before it is learned. */
  readonly promptPattern: RegExp;
  /** Cisco-style `enable` when the prompt ends with `>`. */
  readonly enable: boolean;
}

/** Writes copy commands for one platform. */
export interface CopyCommandBuilder {
  /** The `os` value it serves (`iosxe`, `nxos`, ...). */
  readonly os: string;
  /** Protocols the platform's copy command supports; others throw ERR_UNSUPPORTED_PROTOCOL. */
  readonly protocols: readonly Protocol[];
  /** Longest command the CLI accepts. */
  readonly maxCommandLength: number;
  /** Where the credentials go, per protocol. */
  credentialPolicy(protocol: Protocol, options?: Readonly<Record<string, unknown>>): CredentialPolicy;
  /** Protocols whose client only talks to the standard port: ad-hoc servers use it. */
  readonly standardPortOnly: readonly Protocol[];
  /** The protocol of ad-hoc servers when none is asked for. */
  readonly defaultProtocol: Protocol;
  /** How to set up a CLI session on this platform (prompt, paging off, `enable`). */
  readonly session: SessionProfile;
  /** How to configure this platform, when source interfaces are set by configuration. */
  readonly configMode: ConfigMode | undefined;
  /** Throws ERR_UNSUPPORTED_PROTOCOL or ERR_INVALID_OPTIONS for requests it cannot serve. */
  build(request: CopyRequest): CopyPlan;
}
