/** Jest runs the unit tests (routes, forms, cron in words, formatting, the run tracker) straight from TypeScript. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testMatch: ['**/__tests__/**/*.spec.ts'],
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: { module: 'commonjs', target: 'ES2022', strict: true, esModuleInterop: true, jsx: 'react', types: ['jest'] } }]
  }
};
