/**
 * Worker records in the data dir, so that a worker killed outright (SIGKILL, OOM, power)
 * is known dead at the next start rather than when its leases expire.
 *
 * Each annealer writes `<dataDir>/workers/<id>.json` (its pid, host and temp dir) as it
 * starts and removes it, with its temp dir, when it stops cleanly. Its runs make their
 * temp dirs under that temp dir (`$TMPDIR/formwork-worker-<id>-XXXXXX`). A record of this
 * host whose pid is gone names a worker that died: the starting annealer releases its
 * claims (src/engine/annealer.ts) and removes its temp dir and record with `forget`.
 * Records of other hosts (a data dir on shared storage) are left to their leases: a pid
 * says nothing there.
 *
 * @example
 *   const me = registerWorker(dataDir, 'host:123:abc');   // me.tempDir for runs
 *   for (const dead of deadWorkers(dataDir)) { …release its claims…; forgetWorker(dataDir, dead); }
 *   forgetWorker(dataDir, me);                            // at a clean stop
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Which host's work this worker may take (host-bound providers carry the host that prepared
 * them as their `affinity`): FORMWORK_WORKER_AFFINITY, else the host name.
 */
export function workerAffinity(env: NodeJS.ProcessEnv = process.env): string {
  return env.FORMWORK_WORKER_AFFINITY || os.hostname();
}

export interface WorkerRecord {
  id: string;
  pid: number;
  host: string;
  /** Where this worker's runs make their temp dirs; removed with the worker. */
  tempDir: string;
  startedAt: string;
}

const TEMP_PREFIX = 'formwork-worker-';

function recordsDir(dataDir: string): string {
  return path.join(dataDir, 'workers');
}

/** A worker id as a file name: ids hold `host:pid:random`, so anything unusual becomes `_`. */
function fileSafe(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}

function recordPath(dataDir: string, id: string): string {
  return path.join(recordsDir(dataDir), `${fileSafe(id)}.json`);
}

/** Makes this worker's temp dir and writes its record (written whole, then renamed into place). */
export function registerWorker(dataDir: string, id: string): WorkerRecord {
  const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), `${TEMP_PREFIX}${fileSafe(id)}-`));
  const rec: WorkerRecord = { id, pid: process.pid, host: os.hostname(), tempDir, startedAt: new Date().toISOString() };
  fs.mkdirSync(recordsDir(dataDir), { recursive: true });
  const file = recordPath(dataDir, id);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(rec) + '\n');
  fs.renameSync(`${file}.tmp`, file);
  return rec;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, another user's
  }
}

/** Records of this host's workers whose process is gone. Unreadable records are skipped (a record being written). */
export function deadWorkers(dataDir: string): WorkerRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(recordsDir(dataDir)).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: WorkerRecord[] = [];
  for (const name of names) {
    let rec: WorkerRecord;
    try {
      rec = JSON.parse(fs.readFileSync(path.join(recordsDir(dataDir), name), 'utf8')) as WorkerRecord;
    } catch {
      continue;
    }
    if (typeof rec.id !== 'string' || !Number.isInteger(rec.pid) || rec.host !== os.hostname()) continue;
    if (!alive(rec.pid)) out.push(rec);
  }
  return out;
}

/** Removes a worker's temp dir and record (a dead one's, or its own at a clean stop). Only a temp dir by the worker naming is removed: a record is a file anyone could edit. */
export function forgetWorker(dataDir: string, rec: WorkerRecord): void {
  if (typeof rec.tempDir === 'string' && path.isAbsolute(rec.tempDir) && path.basename(rec.tempDir).startsWith(TEMP_PREFIX)) {
    fs.rmSync(rec.tempDir, { recursive: true, force: true });
  }
  fs.rmSync(recordPath(dataDir, rec.id), { force: true });
}
