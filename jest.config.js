/** One jest run for the whole workspace; TypeScript compiled by swc, packages mapped to their sources. */
const packages = {
  common: 'packages/common',
  schemas: 'packages/schemas',
  emulator: 'packages/emulator',
  storage: 'packages/storage',
  cli: 'packages/cli',
  client: 'packages/client',
  'client-web': 'packages/client-web',
  'gcs-fake': 'packages/gcs-fake',
  gateway: 'services/gateway',
  consumer: 'services/consumer',
  'bucket-format': 'packages/bucket-format',
};
const moduleNameMapper = { '^(\\.{1,2}/.*)\\.js$': '$1' };
for (const [name, dir] of Object.entries(packages)) {
  moduleNameMapper[`^@hourglass/${name}$`] = `<rootDir>/${dir}/src/index.ts`;
  moduleNameMapper[`^@hourglass/${name}/(.*)$`] = `<rootDir>/${dir}/src/$1`;
}
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } },
    ],
  },
  moduleNameMapper,
  globalSetup: '<rootDir>/tests/support/global-setup.ts',
  globalTeardown: '<rootDir>/tests/support/global-teardown.ts',
  testTimeout: 60_000,
  // Two cores and one shared emulator: two workers keep the machine honest.
  maxWorkers: 2,
};
