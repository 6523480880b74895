/**
 * PLACEHOLDER: being built.
 * @internal
 * @module
 */
import { FileServerError } from '../errors.js';
import type { Backend } from './backend.js';

/** Options under `http` of FileServerOptions. */
export type HttpBackendOptions = Readonly<Record<string, unknown>>;

/** @internal */
export const httpBackend: Backend = {
  standardPort: 80,
  listens: true,
  async start() {
    throw new FileServerError('ERR_UNSUPPORTED_PROTOCOL', 'not built yet');
  },
};
