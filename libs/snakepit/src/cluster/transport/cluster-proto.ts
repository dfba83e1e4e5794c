import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { join } from 'node:path';
import { locateProtoRoot, PROTO_LOADER_OPTIONS } from '../../bridge/proto';
import { requestDigest, signCall, type CallParties } from '../security/call-auth';
import type { ClusterNodeClient } from './cluster-messages';

const CLUSTER_PROTO = join('snakepit', 'cluster', 'v1', 'cluster.proto');

/** The `snakepit.cluster.v1.ClusterNode` service: its definition and client constructor. */
export interface ClusterNodeService {
  new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions): ClusterNodeClient;
  service: grpc.ServiceDefinition;
}

export type ClusterMethod = 'Execute' | 'ExecuteStream';

let clusterNode: ClusterNodeService | undefined;

/** The loaded ClusterNode service (loaded once per process). */
export function clusterNodeService(): ClusterNodeService {
  if (!clusterNode) {
    const definition = loadSync(CLUSTER_PROTO, { ...PROTO_LOADER_OPTIONS, includeDirs: [locateProtoRoot()] });
    const root = grpc.loadPackageDefinition(definition) as unknown as { snakepit: { cluster: { v1: { ClusterNode: ClusterNodeService } } } };
    clusterNode = root.snakepit.cluster.v1.ClusterNode;
  }
  return clusterNode;
}

/** A method's definition (path, serializers) as proto-loader built it. */
export function clusterMethod(method: ClusterMethod): grpc.MethodDefinition<object, object> {
  return clusterNodeService().service[method] as grpc.MethodDefinition<object, object>;
}

/**
 * A call is serialized once, by the caller, with the service's own serializer;
 * the MAC covers the SHA-256 of those bytes and the same bytes are sent (an
 * identity serializer), so what is signed is exactly what travels. Signing a
 * field inside the message instead would need a proto change and a second
 * encoding of the rest to sign.
 */
export function signedRequest(
  method: ClusterMethod,
  request: object,
  secret: string,
  parties: CallParties,
  now = Date.now(),
): { bytes: Buffer; metadata: grpc.Metadata } {
  const definition = clusterMethod(method);
  const bytes = definition.requestSerialize(request);
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(signCall(secret, parties, definition.path, bytes, now))) metadata.set(key, value);
  return { bytes, metadata };
}

/** Sends bytes already serialized (by signedRequest) as they are. */
export const sendAsIs = (bytes: Buffer): Buffer => bytes;

const REQUEST_DIGEST = Symbol('requestDigest');

/**
 * The service definition the server registers: each request, as it is
 * deserialized, keeps the SHA-256 of the bytes it arrived as, for the MAC check.
 */
export function digestingServiceDefinition(): grpc.ServiceDefinition {
  const service = clusterNodeService().service;
  return Object.fromEntries(
    Object.entries(service).map(([name, definition]) => [
      name,
      {
        ...definition,
        requestDeserialize: (bytes: Buffer): unknown => {
          const message = definition.requestDeserialize(bytes) as object;
          Object.defineProperty(message, REQUEST_DIGEST, { value: requestDigest(bytes), enumerable: false });
          return message;
        },
      },
    ]),
  );
}

/** The digest of the bytes a request arrived as (see digestingServiceDefinition). */
export function digestOf(request: object): Buffer {
  return (request as { [REQUEST_DIGEST]: Buffer })[REQUEST_DIGEST];
}

/** Reads one text metadata entry. */
export function metadataReader(metadata: grpc.Metadata): (key: string) => string | undefined {
  return (key) => {
    const [value] = metadata.get(key);
    return typeof value === 'string' ? value : undefined;
  };
}
