/**
 * Clouds benchmark (issue 14): for each emulated cloud,
 * 1. Formwork's own time per node: N machines made ready and released through the real
 *    driver (create, readiness wait with make-reachable, release) against the emulator on
 *    the in-memory backend in another process, so the emulator's CPU is not counted; the
 *    figure is this process's CPU time (driver, SDK, call policy) per node, and the wall
 *    time per node. Nothing is probed: memory machines have no sockets (the TCP/22 probe is
 *    answered at once).
 * 2. Nodes ready per minute: a deployment of N nodes (the yardstick only: provision and
 *    node-ready) on a server started here, against the emulator on real lab hosts (lab
 *    subnet indexes 62–64; root), from apply to every node-ready active.
 *
 *   npm run bench:clouds                          # 20 nodes, every emulated cloud, both parts
 *   npm run bench:clouds -- --nodes 5 --clouds aws --skip-lab
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { cloudEmulatorTypes, loadCloudEmulator } from '../src/providers/emulation/clouds.js';
import { LabBackend } from '../src/providers/emulation/lab-hosts.js';
import { ensureBaseImage } from '../src/providers/lab/index.js';
import { ownershipTags, type ProviderContext, type ProvisionedMachine } from '../src/providers/provider.js';
import { awaitReadiness, bootPoll, readinessProbe, releaseMachine } from '../src/providers/readiness.js';
import { loadDriver } from '../src/providers/registry.js';
import { applyDocuments } from '../src/services/apply.js';
import { startServer } from '../src/server/server.js';
import { generateKeyPair } from '../src/ssh/keys.js';

const argv = process.argv.slice(2);
const arg = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const N = Number(arg('nodes') ?? 20);
const clouds = (arg('clouds') ?? cloudEmulatorTypes().join(',')).split(',').filter(Boolean);
const quiet = { info: () => undefined, warn: () => undefined };
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function ownTime(cloud: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'cloud-emulator.ts'), cloud], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next().then((r) => [r.value as string]);
  const [secret, provider] = (JSON.parse(line) as { documents: [{ data: Record<string, string> }, { name: string; settings: Record<string, unknown> }] }).documents;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `fw-bench-${cloud}-`));
  const ctx: ProviderContext = { dataDir, providerName: provider.name, settings: { ...provider.settings, rateLimit: { requestsPerSecond: 1000, concurrency: 64 } }, credentials: secret.data, publicKey: generateKeyPair('bench').publicKey, log: quiet };
  const driver = await loadDriver(cloud);
  readinessProbe.tcp = async () => undefined; // memory machines have no sockets; nothing is sent anywhere
  bootPoll.ms = 200;
  await driver.prepare?.(ctx);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const made = await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      const nodeId = `bench-${cloud}-${i}`;
      const m = await driver.createMachine({ name: `bench-${i}`, nodeId, idempotencyToken: `formwork-${nodeId}-0`, tags: ownershipTags(provider.name, nodeId), size: 'small', image: 'debian-12' }, ctx);
      return awaitReadiness(driver, m, ctx, { waitSeconds: 300, log: () => undefined });
    }),
  );
  const readyMs = performance.now() - t0;
  await Promise.all(made.map((m: ProvisionedMachine) => releaseMachine(driver, m, ctx)));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await driver.teardown?.(ctx);
  child.stdin!.end();
  fs.rmSync(dataDir, { recursive: true, force: true });
  const cpuMs = (cpu.user + cpu.system) / 1000;
  console.log(`${cloud}: ${N} machines made ready in ${(readyMs / 1000).toFixed(2)} s, released by ${(wallMs / 1000).toFixed(2)} s; Formwork's own CPU ${ms(cpuMs / N)} per node (create + readiness + release; target < 50 ms), wall ${ms(wallMs / N)} per node`);
}

async function readyPerMinute(cloud: string, subnetIndex: number): Promise<void> {
  const baseDir = await ensureBaseImage(process.env.FORMWORK_LAB_CACHE ?? '/var/tmp/formwork-lab-cache', quiet);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `fw-bench-${cloud}-lab-`));
  const backend = new LabBackend({ emulator: cloud, dataDir, subnetIndex, baseDir, log: quiet });
  const options = { backend, log: quiet, addressQuota: 1000 }; // a raised Elastic IP quota (AWS; ignored elsewhere)
  const emu = await (await loadCloudEmulator(cloud))(options);
  const server = await startServer({ dataDir, listen: '127.0.0.1:0', handleSignals: false, logLevel: 'warn' });
  const s = server.services;
  const name = `bench-${cloud}`;
  try {
    const t0 = performance.now();
    await applyDocuments(s, [...emu.documents(name), { kind: 'Deployment', name, provider: name, nodes: { count: N, size: 'small', image: 'debian-12' }, roles: {} }], { actor: 'bench' });
    s.engine?.kick();
    for (;;) {
      const roles = (await s.store.objects('noderoles').all({})).filter((r) => String(r.name).startsWith(`${name}:`) && String(r.name).endsWith(':node-ready'));
      const failed = roles.find((r) => r.state === 'error');
      if (failed) throw new Error(`${String(failed.name)}: ${JSON.stringify(failed.lastError)}`);
      if (roles.length === N && roles.every((r) => r.state === 'active')) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const minutes = (performance.now() - t0) / 60_000;
    console.log(`${cloud}: ${N} nodes ready (node-ready active, lab hosts) in ${(minutes * 60).toFixed(1)} s: ${(N / minutes).toFixed(1)} nodes per minute`);
    await server.services.deleters!.get('deployments')!(name, {});
    while (await s.store.objects('deployments').find(name)) await new Promise((r) => setTimeout(r, 500));
    await server.services.deleters!.get('providers')!(name, {});
    while (await s.store.objects('providers').find(name)) await new Promise((r) => setTimeout(r, 500));
  } finally {
    await server.close();
    await emu.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

console.log(`bench:clouds on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}; ${N} nodes per cloud`);
for (const cloud of clouds) await ownTime(cloud);
if (!argv.includes('--skip-lab')) {
  if (process.getuid?.() !== 0) console.log('nodes ready per minute: skipped (lab hosts need root)');
  else for (const [i, cloud] of clouds.entries()) await readyPerMinute(cloud, 62 + i);
}
process.exit(0);
