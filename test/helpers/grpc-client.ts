import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { locateProtoRoot, PROTO_LOADER_OPTIONS } from '@snakepit/nestjs';
import { HealthClient } from './health-client';

/** A client of the sample app's public `snakepit.v1.Snakepit` service, with promise helpers. */
export function snakepitClient(address: string) {
  const definition = loadSync('snakepit/v1/snakepit.proto', { ...PROTO_LOADER_OPTIONS, includeDirs: [locateProtoRoot()] });
  const pkg = grpc.loadPackageDefinition(definition) as any;
  const client: grpc.Client & Record<string, any> = new pkg.snakepit.v1.Snakepit(address, grpc.credentials.createInsecure());
  const unary = <T = any>(method: string, request: object): Promise<T> =>
    new Promise((resolve, reject) =>
      client[method](request, { deadline: Date.now() + 30_000 }, (error: grpc.ServiceError | null, response: T) =>
        error ? reject(error) : resolve(response),
      ),
    );
  return { client, unary, health: new HealthClient(address) };
}

export { HealthClient };
