/**
 * PLACEHOLDER: being built; see the issue for this protocol.
 * @internal
 * @module
 */
import { FileServerError } from '../errors.js';
import type { Backend } from './backend.js';

/** Options under the protocol's key of FileServerOptions. */
export type TftpBackendOptions = Readonly<Record<string, unknown>>;

/** @internal */
export const tftpBackend: Backend = {
  standardPort: 69,
  listens: true,
  async start() {
    throw new FileServerError('ERR_UNSUPPORTED_PROTOCOL', 'not built yet');
  },
};
