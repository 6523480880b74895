/**
 * testbed-fileserver: throw-away TFTP, FTP, HTTP and SCP/SFTP servers for network-device tests.
 *
 * Public API. Nothing inside the package imports this file.
 * @packageDocumentation
 */

export type { CertificateKeyType, TlsOption } from './backends/certificate.js';
export type { FtpBackendOptions } from './backends/ftp.js';
export type { HttpBackendOptions } from './backends/http.js';
export type { ScpInfoOptions } from './backends/scp-info.js';
export type { SshBackendOptions } from './backends/ssh.js';
export type { TftpBackendOptions } from './backends/tftp.js';
export { copyBuilderFor, registerCopyBuilder } from './copy/builders/index.js';
export { iosxeBuilder } from './copy/builders/iosxe.js';
export { iosxrBuilder } from './copy/builders/iosxr.js';
export { junosBuilder } from './copy/builders/junos.js';
export { linuxBuilder } from './copy/builders/linux.js';
export { nxosBuilder } from './copy/builders/nxos.js';
export type {
  ConfigLine,
  ConfigMode,
  CopyCommandBuilder,
  CopyDirection,
  CopyOutput,
  CopyPlan,
  CopyRequest,
  CredentialPolicy,
  FailureReason,
  RemoteFile,
  SessionProfile,
} from './copy/builders/types.js';
export {
  type CopyOptions,
  type CopyProgress,
  type CopyResult,
  copy,
  type VerifyOptions,
} from './copy/copy.js';
export type { Device, Dialog, DialogStep, ExecuteOptions } from './copy/device.js';
export type { Confirmation, DeviceCopyOptions, DeviceCopyResult } from './copy/device-copy.js';
export { type CopyFromDeviceOptions, type CopyFromDeviceResult, copyFromDevice } from './copy/from-device.js';
export { sshFingerprint } from './copy/ssh-connect.js';
export { SshDevice, type SshDeviceFromTestbedOptions, type SshDeviceOptions } from './copy/ssh-device.js';
export { type CopyToDeviceOptions, copyToDevice } from './copy/to-device.js';
export {
  type CredentialPlacement,
  formatConcreteUrl,
  isServerReference,
  parseServerReference,
  type ResolvedUrl,
  type ResolveUrlOptions,
  resolveReference,
  resolveUrl,
  type ServerReference,
} from './copy/url.js';
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
  type AckPacket,
  type DataPacket,
  decodePacket,
  type Endpoint,
  type ErrorPacket,
  encodePacket,
  KNOWN_OPTIONS,
  type KnownOption,
  type OackPacket,
  OPCODE,
  type RequestPacket,
  type RootHandlerOptions,
  rootHandler,
  TFTP_ERROR,
  type TftpCallOptions,
  TftpClient,
  type TftpClientEvents,
  type TftpClientOptions,
  TftpError,
  type TftpErrorCode,
  type TftpErrorNumber,
  type TftpErrorOptions,
  type TftpHandler,
  type TftpOptionList,
  type TftpOutcome,
  type TftpPacket,
  type TftpPacketEvent,
  type TftpPacketHook,
  type TftpProgress,
  type TftpRandomAccess,
  type TftpReadContent,
  type TftpRequest,
  TftpServer,
  type TftpServerCounters,
  type TftpServerEvents,
  type TftpServerOptions,
  type TftpTransferInfo,
  type TftpTransferSettings,
  type TftpTransferStats,
} from './tftp/index.js';
export {
  type Peer,
  PROTOCOLS,
  type Protocol,
  STANDARD_PORTS,
  type TransferDirection,
  type TransferEvent,
  type TransferStart,
} from './transfer.js';
