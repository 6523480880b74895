/**
 * Which backend serves which protocol. Implementations are imported on first use, so a program
 * that only serves HTTP never loads ftp-srv or ssh2.
 * @internal
 * @module
 */
import type { Protocol } from '../transfer.js';
import type { Backend } from './backend.js';

/**
 * How a protocol treats credentials: generated unless given (`random`), required from the user
 * (`user`, information-only SCP: the host's own account), or not at all (`none`).
 * @internal
 */
export type CredentialPolicy = 'random' | 'user' | 'none';

/** Static facts used to validate options before any I/O. @internal */
export interface BackendTraits {
  readonly credentials: CredentialPolicy;
  /** The protocol can turn authentication off (`auth: false`). */
  readonly optionalAuth: boolean;
}

/** @internal */
export function backendTraits(protocol: Protocol, embedded: boolean): BackendTraits {
  switch (protocol) {
    case 'tftp':
      return { credentials: 'none', optionalAuth: false };
    case 'http':
    case 'https':
      return { credentials: 'random', optionalAuth: true };
    case 'scp':
      return embedded
        ? { credentials: 'random', optionalAuth: false }
        : { credentials: 'user', optionalAuth: false };
    default:
      return { credentials: 'random', optionalAuth: false };
  }
}

/** @internal */
export async function loadBackend(protocol: Protocol, embedded: boolean): Promise<Backend> {
  switch (protocol) {
    case 'http':
    case 'https':
      return (await import('./http.js')).httpBackend;
    case 'tftp':
      return (await import('./tftp.js')).tftpBackend;
    case 'ftp':
      return (await import('./ftp.js')).ftpBackend;
    case 'scp':
      return embedded
        ? (await import('./ssh.js')).sshBackend
        : (await import('./scp-info.js')).scpInfoBackend;
    case 'sftp':
      return (await import('./ssh.js')).sshBackend;
  }
}
