import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Runs harness.fixture.ts alone, with the project's harness, for event-loop.test.ts.
export default defineConfig({
  root: fileURLToPath(new URL('../../..', import.meta.url)),
  test: {
    include: ['src/testing/testdata/harness.fixture.ts'],
    setupFiles: ['src/testing/setup.ts'],
    pool: 'forks',
    testTimeout: 60_000, // 1.2 s of CPU can take many more of wall time on busy shared cores
  },
});
