/** Two projects: fast unit tests of the library, and black-box end-to-end tests of the sample app. */
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
      testTimeout: 60_000,
    },
  ],
};
