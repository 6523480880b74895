/**
 * testbed-fileserver: throw-away TFTP, FTP, HTTP and SCP/SFTP servers for network-device tests.
 *
 * Public API. Nothing inside the package imports this file.
 * @packageDocumentation
 */

export { type Credentials, generateCredentials } from './credentials.js';
export {
  type DynamicServers,
  type StartDynamicServersOptions,
  startDynamicServers,
} from './dynamic-servers.js';
export {
  ERROR_CODES,
  type ErrorCode,
  FileServerError,
  type FileServerErrorOptions,
  isFileServerError,
} from './errors.js';
export {
  FileServer,
  type FileServerEvents,
  type FileServerInfo,
  type FileServerOptions,
  type FileServerState,
  type StopOptions,
} from './file-server.js';
export { channels, type Logger } from './log.js';
export {
  ADDRESS_ENV,
  type AddressOptions,
  type AddressSource,
  type ResolveAddressOptions,
  type ResolvedAddress,
  resolveAddress,
} from './net/reachable-address.js';
export { formatUrl, urlHost } from './net/url.js';
export {
  type DeviceConnection,
  type DeviceCredentials,
  type DeviceEntry,
  type ServerEntry,
  Testbed,
  type TestbedInit,
} from './testbed/testbed.js';
export {
  type Peer,
  PROTOCOLS,
  type Protocol,
  type TransferDirection,
  type TransferEvent,
  type TransferStart,
} from './transfer.js';
