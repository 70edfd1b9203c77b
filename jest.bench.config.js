/**
 * The benchmark (`npm run bench`). Kept apart from `jest.config.js` so that `npm test` never
 * runs it; it reuses that file's transform settings.
 */
const { projects } = require('./jest.config.js');

const { transform, transformIgnorePatterns, moduleFileExtensions, testEnvironment } = projects[0];

module.exports = {
  testEnvironment,
  transform,
  transformIgnorePatterns,
  moduleFileExtensions,
  testMatch: ['<rootDir>/test/bench/**/*.bench.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
};
