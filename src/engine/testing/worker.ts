/**
 * A worker process for recovery tests: opens the store named by the environment and runs
 * an annealer until killed. Started as `node --import tsx src/engine/testing/worker.ts`
 * (one process, so SIGKILL hits the annealer itself).
 *
 * Env: FW_WORKER_DATA_DIR, FW_WORKER_DATABASE_URL (optional), FW_WORKER_LEASE_MS, FW_WORKER_ID;
 * FORMWORK_SECRET_KEY, when set, is the secret key (a server's, shared), else a fixed test key.
 */
import { Store } from '../../store/store.js';
import { Annealer } from '../annealer.js';

const dataDir = process.env.FW_WORKER_DATA_DIR as string;
const store = await Store.open({ dataDir, databaseUrl: process.env.FW_WORKER_DATABASE_URL || undefined, secretKey: process.env.FORMWORK_SECRET_KEY ? undefined : Buffer.alloc(32, 7) });
const annealer = new Annealer(
  { store, dataDir, appliers: new Map() },
  { workerId: process.env.FW_WORKER_ID, leaseMs: Number(process.env.FW_WORKER_LEASE_MS ?? 2000), tickMs: 20, retryBaseMs: 10, onError: () => undefined },
);
await annealer.start();
process.stdout.write('ready\n');
const stop = async () => {
  await annealer.stop();
  await store.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
setInterval(() => undefined, 1 << 30);
