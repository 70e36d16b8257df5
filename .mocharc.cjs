'use strict';
// Tests run from the compiled output (npm test builds first), so no TS loader is needed.
module.exports = {
  spec: ['dist/test/unit/**/*.test.js', 'dist/test/integration/**/*.test.js'],
  require: ['dist/test/helpers/root-hooks.js'],
  timeout: 60_000,
  forbidOnly: Boolean(process.env.CI),
  exit: true,
  reporter: 'spec',
};
