import * as grpc from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ProtoGrpcType } from './generated/bridge';

const BRIDGE_PROTO = join('snakepit', 'bridge', 'v1', 'bridge.proto');

/** How every .proto of the project is loaded; the generated types assume these. */
export const PROTO_LOADER_OPTIONS: Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  arrays: true,
};

/**
 * The directory holding the project's .proto files: `proto/` at the repository
 * root in the monorepo, or the copy packed into the published package.
 */
export function locateProtoRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, BRIDGE_PROTO))) return candidate;
    if (dirname(dir) === dir) throw new Error(`Snakepit: cannot find ${BRIDGE_PROTO} in any proto/ directory above ${from}`);
  }
}

let bridgePackage: ProtoGrpcType | undefined;

/** The loaded `snakepit.bridge.v1` package (loaded once per process). */
export function loadBridgePackage(): ProtoGrpcType {
  if (!bridgePackage) {
    const root = locateProtoRoot();
    const definition = loadSync(BRIDGE_PROTO, { ...PROTO_LOADER_OPTIONS, includeDirs: [root] });
    bridgePackage = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  }
  return bridgePackage;
}

/**
 * Channel options for a host -> worker channel. Channelz and retries are off
 * (measured per-call overhead; docs/performance.md): a call is never
 * retried by the transport, only by the pool when the caller allows it.
 */
export function workerChannelOptions(maxMessageBytes: number): grpc.ChannelOptions {
  return {
    'grpc.enable_channelz': 0,
    'grpc.enable_retries': 0,
    'grpc.service_config_disable_resolution': 1,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc-node.flow_control_window': 16 * 1024 * 1024,
  };
}
