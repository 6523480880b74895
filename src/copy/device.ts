/**
 * What the copy helpers need from a device: run a command in its CLI, answer the prompts it
 * asks, and say which local address its connection uses. {@link SshDevice} is the built-in
 * implementation; anything with this shape (a telnet or console session, a wrapper around
 * another library) works too.
 * @module
 */
import type { Testbed } from '../testbed/testbed.js';

/** One prompt a command may ask and how to answer it. */
export interface DialogStep {
  /** What the device prints, e.g. `/Destination filename \[[^\]]*\]\?/`. */
  readonly pattern: RegExp;
  /** Sent back when the pattern appears; a function gets the match. */
  readonly answer: string | ((match: RegExpExecArray) => string);
  /** Append a newline to the answer (default true; false for single-key prompts). */
  readonly newline?: boolean;
  /**
   * How often the prompt may be answered in one command (default 3). One more appearance fails
   * the command with ERR_DEVICE_COMMAND_FAILED, so a refused password is never retried forever.
   */
  readonly max?: number;
  /** The answer is secret (a password): it never appears in logs or errors. */
  readonly secret?: boolean;
  /** A short name for logs and errors, e.g. `'password'`. */
  readonly name?: string;
}

/** The prompts a command may ask, tried in order. */
export type Dialog = readonly DialogStep[];

/** Options of {@link Device.execute}. */
export interface ExecuteOptions {
  /** Prompts to answer while the command runs. */
  dialog?: Dialog;
  /** Give up after this long (ERR_DEVICE_TIMEOUT). Default: the device's command timeout. */
  timeoutMs?: number;
  /** Aborting interrupts the command and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Strings (passwords inside the command) replaced by `***` in logs and errors. */
  secrets?: readonly string[];
}

/** A device CLI the copy helpers can drive. */
export interface Device {
  /** The device's name (in the testbed, when it came from one). */
  readonly name: string;
  /** Its operating system, which selects the copy command builder: `linux`, `iosxe`, `nxos`, ... */
  readonly os: string;
  /**
   * The local end of the connection to the device: an address the device reaches us on, so the
   * one a temporary server binds to (`FileServer({ via: device })`). Undefined while not connected.
   */
  readonly localAddress: string | undefined;
  /** The testbed whose named servers the copy helpers look up by default. */
  readonly testbed?: Testbed | undefined;
  /**
   * Runs one command, answering the dialog's prompts, and resolves with its output (without the
   * echoed command and the final prompt). Throws ERR_DEVICE_TIMEOUT, ERR_DEVICE_CONNECTION, or
   * ERR_DEVICE_COMMAND_FAILED when a prompt repeats beyond its `max`.
   */
  execute(command: string, options?: ExecuteOptions): Promise<string>;
  /**
   * Connects when not connected yet. The copy helpers call it before they read `localAddress`;
   * devices that are always connected need not have it.
   */
  connect?(options?: { signal?: AbortSignal }): Promise<unknown>;
}

/** `text` with every secret replaced by `***`. */
export function hideSecrets(text: string, secrets: readonly string[] | undefined): string {
  let out = text;
  for (const secret of secrets ?? []) {
    if (secret.length === 0) continue;
    out = out.split(secret).join('***');
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join('***');
  }
  return out;
}
