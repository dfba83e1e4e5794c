/**
 * Projects: fast unit tests of the library, and black-box end-to-end, chaos
 * and cluster tests of the built sample app. (Jest reads `testTimeout` only at
 * the top level, so the slow suites call jest.setTimeout themselves.)
 */
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.spec.json' }] };
const moduleNameMapper = { '^@snakepit/nestjs$': '<rootDir>/libs/snakepit/src/index.ts' };

module.exports = {
  projects: [
    {
      displayName: 'unit',
      rootDir: __dirname,
      testEnvironment: 'node',
      testMatch: ['<rootDir>/libs/**/*.spec.ts'],
      transform,
      moduleNameMapper,
    },
    {
      displayName: 'e2e',
      rootDir: __dirname,
      testEnvironment: 'node',
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'],
      transform,
      moduleNameMapper,
    },
    {
      displayName: 'chaos',
      rootDir: __dirname,
      testEnvironment: 'node',
      testMatch: ['<rootDir>/test/chaos/**/*.chaos-spec.ts'],
      transform,
      moduleNameMapper,
    },
    {
      // Cluster mode against a real redis-server and several sample-app processes.
      displayName: 'cluster',
      rootDir: __dirname,
      testEnvironment: 'node',
      testMatch: ['<rootDir>/test/cluster/**/*.cluster-spec.ts'],
      transform,
      moduleNameMapper,
    },
  ],
};
