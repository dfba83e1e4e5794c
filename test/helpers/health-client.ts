import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

/** A grpc.health.v1 client: `check('')` answers SERVING / NOT_SERVING. */
export class HealthClient {
  private readonly client: grpc.Client;

  constructor(address: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
  }

  check(service = '', metadata = new grpc.Metadata()): Promise<string> {
    // By path, as a generated client's check() calls it; grpc-health-check types its messages only as objects.
    const { path, requestSerialize, responseDeserialize } = healthService.Check;
    const decode = responseDeserialize as (bytes: Buffer) => { status: string };
    return new Promise((resolve, reject) =>
      this.client.makeUnaryRequest(path, requestSerialize, decode, { service }, metadata, { deadline: Date.now() + 5_000 }, (error, response) =>
        error ? reject(error) : resolve(response!.status),
      ),
    );
  }

  close(): void {
    this.client.close();
  }
}
