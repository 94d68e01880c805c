/**
 * Two jest projects over the workspace; TypeScript compiled by swc, packages mapped to their sources.
 * - `unit`: tests/unit/**, pure tests (no emulator, no child process, no server): seconds,
 *   `npx jest --selectProjects unit` (or `make test-unit`).
 * - `emulator`: every other test folder; its global setup starts the Pub/Sub emulator unless
 *   PUBSUB_EMULATOR_HOST names one already running.
 * `npx jest` (and `make test`) runs both.
 */
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
const UNIT_DIR = '<rootDir>/tests/unit/';
/** What both projects share. */
const common = {
  rootDir: __dirname,
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } },
    ],
  },
  moduleNameMapper,
};
/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      roots: [UNIT_DIR],
      testPathIgnorePatterns: ['/node_modules/'],
    },
    {
      ...common,
      displayName: 'emulator',
      testPathIgnorePatterns: ['/node_modules/', UNIT_DIR],
      globalSetup: '<rootDir>/tests/support/global-setup.ts',
      globalTeardown: '<rootDir>/tests/support/global-teardown.ts',
    },
  ],
  // A global option: jest ignores it inside a project.
  testTimeout: 60_000,
  // Two cores and one shared emulator: two workers keep the machine honest.
  maxWorkers: 2,
};
