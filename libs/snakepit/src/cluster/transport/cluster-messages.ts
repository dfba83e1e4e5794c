// The TypeScript shapes of proto/snakepit/cluster/v1/cluster.proto, generated
// from it by the set-up step (scripts/setup.mjs): never written by hand.
export type { ClusterNodeClient, ClusterNodeHandlers } from '../generated/snakepit/cluster/v1/ClusterNode';
export type { ForwardedCall, ForwardedCall__Output } from '../generated/snakepit/cluster/v1/ForwardedCall';
export type { ForwardedFrame, ForwardedFrame__Output } from '../generated/snakepit/cluster/v1/ForwardedFrame';
export type { ForwardedReply, ForwardedReply__Output } from '../generated/snakepit/cluster/v1/ForwardedReply';
export type { ForwardedResult, ForwardedResult__Output } from '../generated/snakepit/cluster/v1/ForwardedResult';
