/**
 * PLACEHOLDER: being built; see the issue for this protocol.
 * @internal
 * @module
 */
import { FileServerError } from '../errors.js';
import type { Backend } from './backend.js';

/** Options under the protocol's key of FileServerOptions. */
export type ScpInfoOptions = Readonly<Record<string, unknown>>;

/** @internal */
export const scpInfoBackend: Backend = {
  standardPort: 22,
  listens: true,
  async start() {
    throw new FileServerError('ERR_UNSUPPORTED_PROTOCOL', 'not built yet');
  },
};
