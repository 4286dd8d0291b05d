import { defineConfig } from 'vitest/config';

// Unit tests sit beside the code (src/**/*.test.ts); end-to-end areas live in test/e2e/<area>.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Fails any test that blocked the event loop for over a second or re-entered a transaction.
    setupFiles: ['src/testing/setup.ts'],
  },
});
