import { startServer } from './server.js';

/**
 * A server process for tests: `node --import tsx src/server/main-for-test.ts`, configured
 * by FORMWORK_DATA_DIR, FORMWORK_LISTEN (default 127.0.0.1:0) and FORMWORK_DATABASE_URL.
 * Logs go to DATA_DIR/server.log; the URL appears in DATA_DIR/server.json.
 */
const dataDir = process.env.FORMWORK_DATA_DIR;
if (!dataDir) {
  process.stderr.write('FORMWORK_DATA_DIR is required\n');
  process.exit(2);
}
const server = await startServer({
  dataDir,
  listen: process.env.FORMWORK_LISTEN ?? '127.0.0.1:0',
  logFile: `${dataDir}/server.log`,
  logLevel: process.env.FORMWORK_LOG_LEVEL ?? 'info',
});
process.stdout.write(JSON.stringify({ url: server.url, pid: process.pid }) + '\n');
