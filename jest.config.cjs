/** Jest runs the TypeScript sources through swc to CommonJS; NestJS 12 ships
 * ESM only, so @nestjs (and its ESM-only dependencies) are transformed too. */
const swcOptions = {
  jsc: {
    target: 'es2022',
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
    keepClassNames: true,
  },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
};

module.exports = {
  // Node's environment, plus a guard: a test file that leaves a ref'ed timer
  // pending fails, naming where the timer was made (issue 13: one left by
  // ipc.outbound.spec.ts held a worker into "failed to exit gracefully").
  testEnvironment: `${__dirname}/test/helpers/timer-guard-environment.cjs`,
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
  transform: {
    '^.+\\.(t|j|mj)s$': ['@swc/jest', swcOptions],
  },
  transformIgnorePatterns: [
    '/node_modules/(?!(@nestjs|file-type|strtok3|token-types|@tokenizer|uint8array-extras|load-esm)/)',
  ],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testTimeout: 30000,
  maxWorkers: 2,
  // Jest SIGTERMs a worker still alive this long after its end message
  // ("A worker process has failed to exit gracefully"). A worker's JS is done
  // within a millisecond of it; freeing its heap then takes ~0.5 s on a busy
  // 2-core machine, more than Jest's default 500 ms (issue 13, measured in
  // test/unit/ffi/jest-worker-exit.spec.ts). A worker that leaks a handle is
  // still reported, 10 s later; the message that stayed after this setting
  // was a leaked 60 s timer, which the testEnvironment above now reports.
  workerGracefulExitTimeout: 10_000,
  setupFiles: ['reflect-metadata'],
  reporters: ['default', '<rootDir>/scripts/jest-summary-reporter.cjs'],
};
