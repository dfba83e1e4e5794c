import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createHash, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { locateProtoRoot, PROTO_LOADER_OPTIONS } from '../../bridge/proto';
import type { ClusterNodeClient } from './cluster-messages';

const CLUSTER_PROTO = join('snakepit', 'cluster', 'v1', 'cluster.proto');
const SECRET_METADATA_KEY = 'x-snakepit-cluster-secret';

/** The `snakepit.cluster.v1.ClusterNode` service: its definition and client constructor. */
export interface ClusterNodeService {
  new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions): ClusterNodeClient;
  service: grpc.ServiceDefinition;
}

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

/** Call metadata carrying the shared cluster secret. */
export function secretMetadata(secret: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(SECRET_METADATA_KEY, secret);
  return metadata;
}

/** Whether the call presents the cluster secret (compared in constant time). */
export function presentsSecret(metadata: grpc.Metadata, secret: string): boolean {
  const [presented] = metadata.get(SECRET_METADATA_KEY);
  if (typeof presented !== 'string') return false;
  return timingSafeEqual(digest(presented), digest(secret));
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
