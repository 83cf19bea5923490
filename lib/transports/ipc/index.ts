export { IpcTransport } from './ipc.transport.js';
export {
  IpcBroker,
  type IpcBrokerEvents,
  type IpcBrokerState,
  type IpcBrokerStats,
  type IpcBrokerStatus,
} from './ipc.broker.js';
export {
  startBroker,
  forkWorkers,
  type ForkWorkersOptions,
  type ClusterWorkers,
} from './ipc.cluster.js';
export { IpcSocketError, IpcFrameRefusedError } from './ipc.errors.js';
export {
  defaultSocketPath,
  type IpcCommonOptions,
  type IpcTransportOptions,
  type IpcBrokerOptions,
} from './ipc.options.js';
