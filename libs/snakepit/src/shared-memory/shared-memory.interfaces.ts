import type { Payload, Payload__Output } from '../bridge/generated/snakepit/bridge/v1/Payload';

/** A pool's shared-memory settings, resolved. */
export interface SharedMemorySettings {
  /** The run's private directory the regions live in. */
  dir: string;
  /** Blobs of at least this many bytes travel through the regions; smaller ones stay in the gRPC message. */
  thresholdBytes: number;
  /** The cap of each of a worker's two regions: the bytes of all live slots in it. */
  regionBytes: number;
}

/**
 * What a worker channel needs from its worker's shared-memory regions (the
 * seam between the channel and the files: the channel's specs use a fake).
 */
export interface SharedPayloads {
  /**
   * The payload to send instead of `payload`: each blob at or over the
   * threshold written to the host region, as a slot held by call `owner`
   * until releaseCall(owner). Throws RESOURCE_EXHAUSTED (holding nothing) when
   * the region cannot take them.
   */
  place(owner: number, payload: Payload | null | undefined): Payload | null | undefined;
  /** The worker is done with call `owner`'s slots (its terminal message arrived, or its stream broke). */
  releaseCall(owner: number): void;
  /**
   * Reads each worker-region slot of a received payload into the blob's data,
   * in place, and adds its offset to `released` (also when the slot is refused).
   * Throws SERIALIZATION_ERROR for a slot that does not hold together.
   */
  receive(payload: Payload__Output | null | undefined, released: number[]): void;
}
