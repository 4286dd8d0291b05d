import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { parseAllDocuments } from 'yaml';
import { DURATION_HINT } from '../../core/durations.js';
import { FormworkError } from '../../core/errors.js';
import { packageRoot } from '../../package.js';
import type { ApplyDocument, FormworkClient } from '../../client/client.js';
import { awaitDeletion } from '../../client/deletion.js';
import { ensureServer, readServerFile, readUpState, stopPid, UP_FILE } from '../background-server.js';
import { pidAlive, type CliContext } from '../context.js';
import { proveThroughHaproxy } from '../demo-proof.js';
import { applyResultLine, durationOption } from '../format.js';
import type { DeploymentTree } from '../../core/wire.js';
import { follow, reasonOf } from '../progress.js';

/**
 * The main job and its undoing, on the embedded default (SQLite, the lab provider):
 *
 *   formwork up     starts a server in the background if none runs (background-server.ts), applies
 *                   examples/lab-demo.yaml (a lab provider, 4 hosts, etcd on 3, haproxy on 1),
 *                   shows progress per node and node-role (progress.ts), then proves it: a key
 *                   written through haproxy reads back (demo-proof.ts).
 *   formwork down   deletes the deployment (machines included) and the provider, and stops
 *                   the server `up` started.
 *
 * @example
 *   formwork up && formwork conformance && formwork down
 */

const DEMO_FILE = 'examples/lab-demo.yaml'; // in the package root
const DEMO_DEPLOYMENT = 'demo';
const DEMO_PROVIDER = 'lab';
const UP_DOCUMENTS_FILE = 'up-documents.json'; // the demo with `up`'s overrides, for the server it starts
const UP_WAIT_SECONDS = 20 * 60; // up --wait's default

/** The demo's documents, with the lab networks moved to `subnetIndex` when given. */
async function upDocuments(subnetIndex: number | undefined): Promise<ApplyDocument[]> {
  const docs = parseAllDocuments(fs.readFileSync(path.join(packageRoot(), DEMO_FILE), 'utf8')).map((d) => d.toJSON() as ApplyDocument);
  const provider = docs.find((d) => d.kind === 'Provider');
  if (provider && subnetIndex !== undefined) provider.settings = { ...(provider.settings as object), subnetIndex };
  return docs;
}

/** A file of the demo's documents for a server to apply as it starts: the shipped one, or a copy with the overrides. */
async function upDocumentsFile(dataDir: string, subnetIndex: number | undefined): Promise<string> {
  if (subnetIndex === undefined) return path.join(packageRoot(), DEMO_FILE);
  const file = path.join(dataDir, UP_DOCUMENTS_FILE);
  fs.writeFileSync(file, JSON.stringify(await upDocuments(subnetIndex), null, 2) + '\n', { mode: 0o600 });
  return file;
}

/** Deletes and waits until it is gone (a worker deprovisions it: DELETE answers at once). */
async function deleteIfThere(client: FormworkClient, kind: string, name: string, onProgress: (line: string) => void): Promise<boolean> {
  try {
    const marked = await client.delete(kind, name);
    if (marked?.deletion) await awaitDeletion(client, kind, marked, { onProgress });
    return true;
  } catch (e) {
    if ((e as FormworkError).code === 'NOT_FOUND') return false;
    throw e;
  }
}

/**
 * Adds `up` and `down` to the program.
 *
 * @example
 *   register(program, ctx); // formwork up --subnet-index 3; formwork down
 */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('up')
    .description('bring up the lab demo: 4 real Debian hosts, etcd on 3, haproxy in front (starts a server if none runs)')
    .option('--listen <host:port>', 'where a server started by up listens', '127.0.0.1:7480')
    // Not --timeout: that is the program-wide request timeout, which would take the value.
    .option('--wait <duration>', `give up waiting for the deployment after this long (${DURATION_HINT}; default 20m)`, durationOption)
    .option('--subnet-index <n>', 'lab networks: public 198.18.(2N).0/24, private 198.18.(2N+1).0/24 (0–255)', (v) => Number(v))
    .action(async (opts: { listen: string; wait?: number; subnetIndex?: number }) => {
      const t0 = Date.now();
      const note = (s: string) => ctx.err(s);
      const dataDir = ctx.resolve().dataDir;
      // The lab driver's own checks, loaded only by `up` (docs/architecture.md, "Layering").
      const { baseDirFor, isBaseReady, requiredTools } = await import('../../providers/lab/base.js');
      const { client, url, started } = await ensureServer(ctx, opts.listen, note, {
        applyFile: () => upDocumentsFile(dataDir, opts.subnetIndex),
        // The server about to start makes the lab hosts, as this user: no tool missing, and
        // root. Checked here, so that `up` stops before it starts anything.
        preflight: requiredTools,
      });
      if (!isBaseReady(baseDirFor(dataDir))) {
        note('first run: the lab hosts\' base image is built with debootstrap (about 2 minutes; cached in the data dir after that)');
      }
      if (started) note('the server applied the demo documents as it started');
      else for (const r of await client.apply(await upDocuments(opts.subnetIndex))) note(applyResultLine(r));
      const { signal, dispose } = ctx.shutdownSignal();
      let tree: DeploymentTree;
      try {
        tree = await follow(ctx, client, DEMO_DEPLOYMENT, (opts.wait ?? UP_WAIT_SECONDS) * 1000, signal);
      } finally {
        dispose();
      }
      const all = [...tree.nodes.flatMap((n) => n.noderoles), ...tree.other];
      const failed = all.filter((x) => x.state === 'error');
      const blocked = all.filter((x) => x.state === 'blocked');
      if (failed.length || blocked.length) {
        for (const f of failed) {
          ctx.err(`\n${f.name} failed: ${f.lastError?.message ?? ''}`);
          try {
            const log = await client.runLog(f.name);
            if (log?.log) ctx.err(log.log.split('\n').slice(-15).map((l) => `  | ${l}`).join('\n'));
          } catch {
            // no run recorded
          }
        }
        if (blocked.length) ctx.err(`\nblocked:\n${blocked.map((b) => `  ${b.name}${reasonOf(b)}`).join('\n')}`);
        throw new FormworkError('RUN_FAILED', `${failed.length} node-role(s) failed, ${blocked.length} blocked; fix and run \`formwork up\` again (it converges), or \`formwork retry deployment/${DEMO_DEPLOYMENT}\``);
      }
      const haproxy = all.find((x) => x.role === 'haproxy');
      const nr = haproxy ? await client.get('noderoles', haproxy.name) : undefined;
      const frontend = (nr?.outputs as { frontend?: string } | undefined)?.frontend;
      if (!frontend) throw new FormworkError('INTERNAL', 'the haproxy node-role is active but reports no frontend');
      const proof = await proveThroughHaproxy(frontend);
      const r = ctx.resolve();
      ctx.out(
        [
          ``,
          `Formwork is up (${((Date.now() - t0) / 1000).toFixed(1)} s).`,
          `  API            ${url}/api/v1   (docs: ${url}/api/docs)`,
          `  token          ${path.join(r.dataDir, 'admin.token')}`,
          `  etcd (haproxy) http://${frontend}`,
          `  proof          wrote ${proof.key}="${proof.value}" through haproxy and read it back`,
          `  next           formwork get nodes · formwork describe deployment demo · formwork conformance · formwork down`,
        ].join('\n'),
      );
    });

  program
    .command('down')
    .description('remove what `formwork up` made: the demo deployment and its hosts, the lab provider, the background server')
    .option('--listen <host:port>', 'where a server started to tear down listens', '127.0.0.1:7480')
    .action(async (opts: { listen: string }) => {
      const note = (s: string) => ctx.err(s);
      const r = ctx.resolve();
      // Nothing `up` made can exist without its database (SQLite in the data dir, unless a
      // PostgreSQL URL says otherwise) or a server answering: then there is nothing to undo,
      // and starting a server (creating a data dir) just to find that out would be noise.
      const sqlite = !(ctx.io.env.FORMWORK_DATABASE_URL ?? '');
      if (sqlite && r.endpointSource !== 'flag' && r.endpointSource !== 'env' && !fs.existsSync(path.join(r.dataDir, 'formwork.db')) && !readServerFile(r.dataDir)) {
        ctx.out(`Nothing to remove in ${r.dataDir}: \`formwork up\` has not run there.`);
        return;
      }
      const state = readUpState(r.dataDir);
      const { client, started } = await ensureServer(ctx, opts.listen, note);
      if (await deleteIfThere(client, 'deployments', DEMO_DEPLOYMENT, note)) note(`deployment/${DEMO_DEPLOYMENT} deleted (with its hosts)`);
      if (await deleteIfThere(client, 'providers', DEMO_PROVIDER, note)) note(`provider/${DEMO_PROVIDER} deleted (bridges and apt proxy torn down)`);
      // Stop the server `up` started, and only that one: its pid (from up.json) must be the
      // pid of the server that answers for this data dir now (server.json). A pid alone may
      // by now be another process's, if that server died without `down`.
      const serving = readServerFile(r.dataDir)?.pid;
      const pid = started ? readUpState(r.dataDir).serverPid : state.serverPid !== undefined && state.serverPid === serving ? state.serverPid : undefined;
      if (!started && state.serverPid !== undefined && pid === undefined) {
        note(`the server \`up\` started (pid ${state.serverPid}) is no longer the one serving ${r.dataDir}; the one that is${serving ? ` (pid ${serving})` : ''} was started otherwise and is left running`);
      } else if (!started && state.serverPid === undefined) {
        note(`the server serving ${r.dataDir}${serving ? ` (pid ${serving})` : ''} was not started by \`formwork up\` (no ${UP_FILE}) and is left running`);
      }
      if (pid && pidAlive(pid)) {
        if (!(await stopPid(pid, 30_000, false))) {
          throw new FormworkError('INTERNAL', `the background server (pid ${pid}) did not stop within 30 s after SIGTERM; stop it, then run \`formwork down\` again`);
        }
        note(`background server (pid ${pid}) stopped`);
      }
      fs.rmSync(path.join(r.dataDir, UP_FILE), { force: true });
      fs.rmSync(path.join(r.dataDir, UP_DOCUMENTS_FILE), { force: true });
      ctx.out('Formwork is down.');
    });
}
