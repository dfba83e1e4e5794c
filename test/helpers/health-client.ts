import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

/** A grpc.health.v1 client: `check('')` answers SERVING / NOT_SERVING. */
export class HealthClient {
  private readonly client: grpc.Client & Record<string, any>;

  constructor(address: string) {
    const Client = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'grpc.health.v1.Health');
    this.client = new Client(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
  }

  check(service = '', metadata = new grpc.Metadata()): Promise<string> {
    return new Promise((resolve, reject) =>
      this.client.check({ service }, metadata, { deadline: Date.now() + 5_000 }, (error: grpc.ServiceError | null, response: { status: string }) =>
        error ? reject(error) : resolve(response.status),
      ),
    );
  }

  close(): void {
    this.client.close();
  }
}
