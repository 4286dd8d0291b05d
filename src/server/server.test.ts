import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import net from 'node:net';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { STORE_ENGINES, createTestDatabase } from '../store/testing/engines.js';
import { allowTransactionReentry } from '../testing/setup.js';
import { ADMIN_TOKEN_FILE, SERVER_FILE, parseListen, startServer, type RunningServer } from './server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-server-'));
}

describe('parseListen', () => {
  it('reads HOST:PORT, [v6]:PORT and refuses junk', () => {
    expect(parseListen('127.0.0.1:7480')).toEqual({ host: '127.0.0.1', port: 7480 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen(':8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(() => parseListen('localhost')).toThrow(/HOST:PORT/);
    expect(() => parseListen('a:99999')).toThrow(/HOST:PORT/);
  });
});

describe.each(STORE_ENGINES)('startServer on $name', (engine) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** An empty data dir and, on PostgreSQL, an empty database; both removed after the test. */
  async function freshStore(): Promise<{ dataDir: string; databaseUrl: string | undefined }> {
    const dataDir = tempDir();
    cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    if (engine.name !== 'postgres') return { dataDir, databaseUrl: undefined };
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    return { dataDir, databaseUrl: db.url };
  }

  async function start(dataDir: string, databaseUrl: string | undefined): Promise<RunningServer> {
    return startServer({ dataDir, listen: '127.0.0.1:0', databaseUrl, handleSignals: false, logFile: path.join(dataDir, 'server.log') });
  }

  it('writes admin.token (0600) that authenticates, keeps it across restarts, and server.json while running; logs its start-up steps', async () => {
    const { dataDir, databaseUrl } = await freshStore();
    fs.chmodSync(dataDir, 0o755); // an operator's looser data dir: what is in it stays private all the same
    const s1 = await start(dataDir, databaseUrl);
    const tokenFile = path.join(dataDir, ADMIN_TOKEN_FILE);
    expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);
    const privateFiles = ['server.log', ...(databaseUrl ? [] : ['formwork.db', 'formwork.db-wal'])];
    for (const f of privateFiles) expect(fs.statSync(path.join(dataDir, f)).mode & 0o777, f).toBe(0o600);
    const token = fs.readFileSync(tokenFile, 'utf8').trim();
    const who = await fetch(`${s1.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
    expect(await who.json()).toMatchObject({ user: 'admin', role: 'admin' });
    const info = JSON.parse(fs.readFileSync(path.join(dataDir, SERVER_FILE), 'utf8'));
    expect(info).toMatchObject({ url: s1.url, pid: process.pid });
    expect(await (await fetch(`${s1.url}/healthz`)).json()).toEqual({ status: 'ok', store: engine.name });
    await s1.close();
    expect(fs.existsSync(path.join(dataDir, SERVER_FILE))).toBe(false);

    const s2 = await start(dataDir, databaseUrl);
    expect(fs.readFileSync(tokenFile, 'utf8').trim()).toBe(token); // still valid: kept
    const tokens = await s2.services.store.auth.listTokens();
    await s2.services.store.auth.revokeToken(tokens.find((t) => t.user === 'admin')!.id);
    await s2.close();

    const s3 = await start(dataDir, databaseUrl);
    const fresh = fs.readFileSync(tokenFile, 'utf8').trim();
    expect(fresh).not.toBe(token); // revoked: replaced
    expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect((await fetch(`${s3.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${fresh}` } })).status).toBe(200);
    await s3.close();
    const log = fs.readFileSync(path.join(dataDir, 'server.log'), 'utf8');
    expect(log).not.toContain(fresh);
    // Each start logs where its time went, step by step, in ms since the process started.
    const listening = log.split('\n').filter((l) => l.includes('formwork server listening')).map((l) => JSON.parse(l) as { startup: Record<string, number | string> });
    expect(listening).toHaveLength(3);
    const { processStartedAt, ...steps } = listening[2].startup;
    expect(Math.abs(Date.parse(processStartedAt as string) - performance.timeOrigin)).toBeLessThan(2);
    const order = ['called', 'address', 'store', 'engine', 'applied', 'listening'];
    expect(Object.keys(steps)).toEqual(order);
    for (let i = 1; i < order.length; i++) expect(steps[order[i]]).toBeGreaterThanOrEqual(steps[order[i - 1]] as number);
    expect(steps.listening).toBeLessThanOrEqual(performance.now());
  });

  it('logs a TRANSACTION_REENTRY even when the code that raised it swallowed it', async () => {
    allowTransactionReentry('raises one on purpose, to see it logged');
    const { dataDir, databaseUrl } = await freshStore();
    const s = await start(dataDir, databaseUrl);
    const store = s.services.store;
    await store.transaction(async () => store.objects('nodes').find('x').catch(() => undefined));
    await s.close();
    const log = fs.readFileSync(path.join(dataDir, 'server.log'), 'utf8');
    const line = log.split('\n').find((l) => l.includes('TRANSACTION_REENTRY'));
    expect(line, log).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ level: 50, err: { code: 'TRANSACTION_REENTRY' } });
  });

  it('applies documents as it starts, before the API answers; a bad one or a port in use fails the start with nothing written; an early client does not hold it', async () => {
    const { dataDir, databaseUrl } = await freshStore();
    const base = { dataDir, databaseUrl, handleSignals: false, logFile: path.join(dataDir, 'server.log') } as const;
    const secret = { kind: 'Secret', name: 'creds', data: { key: 'k' } };

    // A bad document among good ones: the start fails, nothing is written, the port is free again.
    const blocker = await startServer({ ...base, listen: '127.0.0.1:0' });
    const port = Number(new URL(blocker.url).port);
    await blocker.close();
    await expect(startServer({ ...base, listen: `127.0.0.1:${port}`, apply: [secret, { kind: 'Node', name: 'n1', addresses: 'not a list' }] })).rejects.toMatchObject({
      code: 'VALIDATION',
      message: expect.stringContaining('/documents/1/addresses'),
    });
    const s1 = await startServer({ ...base, listen: `127.0.0.1:${port}` }); // the failed start let go of the port
    expect(await s1.services.store.objects('secrets').find('creds')).toBeUndefined();

    // The address is taken before the store is touched: a port in use refuses the start and applies nothing.
    await expect(startServer({ ...base, listen: `127.0.0.1:${port}`, apply: [secret] })).rejects.toThrow(/in use \(EADDRINUSE\)/);
    expect(await s1.services.store.objects('secrets').find('creds')).toBeUndefined();
    await s1.close();

    const s2 = await startServer({ ...base, listen: '127.0.0.1:0', apply: [secret, { kind: 'Node', name: 'n1' }] });
    expect(s2.applied.map((r) => `${r.kind}/${r.name} ${r.action}`)).toEqual(['Secret/creds created', 'Node/n1 created']);
    const token = fs.readFileSync(path.join(dataDir, ADMIN_TOKEN_FILE), 'utf8').trim();
    const node = await fetch(`${s2.url}/api/v1/nodes/n1`, { headers: { authorization: `Bearer ${token}` } });
    expect(node.status).toBe(200); // there on the API's first answer
    await s2.close();
    const s3 = await startServer({ ...base, listen: '127.0.0.1:0', apply: [secret, { kind: 'Node', name: 'n1' }] });
    expect(s3.applied.map((r) => r.action)).toEqual(['unchanged', 'unchanged']);
    await s3.close();

    // A client that connects while the server starts is cut off, and does not hold the start.
    let early: net.Socket | undefined;
    const s4 = await startServer({
      ...base,
      listen: `127.0.0.1:${port}`,
      configure: () =>
        new Promise<void>((resolve, reject) => {
          early = net.connect(port, '127.0.0.1', () => resolve()).on('error', reject);
        }),
    });
    await new Promise((resolve) => (early!.destroyed ? resolve(undefined) : early!.once('close', resolve)));
    expect((await fetch(`${s4.url}/healthz`)).status).toBe(200);
    await s4.close();
  });
});

describe('the server process', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  function launch(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main-for-test.ts'], {
      cwd: ROOT,
      env: { ...process.env, FORMWORK_DATA_DIR: dataDir, FORMWORK_DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    return new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      child.stdout!.on('data', (d) => {
        out += String(d);
        const line = out.split('\n').find((l) => l.startsWith('{"url"'));
        if (line) resolve({ child, url: JSON.parse(line).url });
      });
      child.stderr!.on('data', (d) => (err += String(d)));
      child.on('exit', (code) => reject(new Error(`server exited (${code}): ${err}`)));
    });
  }

  it('loses no acknowledged write when SIGKILLed (SQLite)', async () => {
    const dataDir = tempDir();
    try {
      const first = await launch(dataDir);
      const token = fs.readFileSync(path.join(dataDir, ADMIN_TOKEN_FILE), 'utf8').trim();
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${first.url}/api/v1/nodes`, { method: 'POST', headers, body: JSON.stringify({ name: `durable-${i}`, zone: 'z' }) });
        expect(res.status).toBe(201);
      }
      const last = await fetch(`${first.url}/api/v1/nodes/durable-0`, { method: 'PATCH', headers, body: JSON.stringify({ zone: 'after' }) });
      expect(last.status).toBe(200);
      first.child.kill('SIGKILL'); // right after the acknowledgement
      await new Promise((r) => first.child.once('exit', r));

      const second = await launch(dataDir);
      expect(fs.readFileSync(path.join(dataDir, ADMIN_TOKEN_FILE), 'utf8').trim()).toBe(token);
      const list = (await (await fetch(`${second.url}/api/v1/nodes?zone=z`, { headers })).json()) as { items: { name: string }[] };
      expect(list.items.map((n: { name: string }) => n.name)).toEqual(['durable-1', 'durable-2', 'durable-3', 'durable-4']);
      const node = await (await fetch(`${second.url}/api/v1/nodes/durable-0`, { headers })).json();
      expect(node).toMatchObject({ zone: 'after', version: 2 });
      const info = JSON.parse(fs.readFileSync(path.join(dataDir, SERVER_FILE), 'utf8'));
      expect(info).toMatchObject({ url: second.url, pid: second.child.pid });

      second.child.kill('SIGTERM'); // graceful: server.json removed, exit 0
      const code = await new Promise((r) => second.child.once('exit', (c) => r(c)));
      expect(code).toBe(0);
      expect(fs.existsSync(path.join(dataDir, SERVER_FILE))).toBe(false);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('TLS', () => {
  it('serves HTTPS with the given certificate and refuses half a TLS configuration or a pair that does not load', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-tls-'));
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    await expect(startServer({ dataDir: dir, listen: '127.0.0.1:0', tlsCert: cert, handleSignals: false, logFile: path.join(dir, 'log') })).rejects.toThrow(/both/);
    // A pair that does not load fails the start before anything happens: no store, nothing applied.
    const junk = path.join(dir, 'junk.pem');
    fs.writeFileSync(junk, 'not a key\n');
    await expect(
      startServer({ dataDir: path.join(dir, 'bad'), listen: '127.0.0.1:0', tlsCert: cert, tlsKey: junk, handleSignals: false, logFile: path.join(dir, 'log'), apply: [{ kind: 'Node', name: 'n' }] }),
    ).rejects.toThrow(`the TLS certificate ${cert} and key ${junk} do not load as a PEM pair`);
    expect(fs.existsSync(path.join(dir, 'bad', 'formwork.db'))).toBe(false);
    const server = await startServer({ dataDir: dir, listen: '127.0.0.1:0', tlsCert: cert, tlsKey: key, handleSignals: false, assemble: false, logFile: path.join(dir, 'log') });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        https.get(`${server.url}/healthz`, { ca: fs.readFileSync(cert) }, (res) => {
          let b = '';
          res.on('data', (c: Buffer) => (b += c));
          res.on('end', () => resolve(b));
        }).on('error', reject);
      });
      expect(JSON.parse(body).status).toBe('ok');
      // Plain HTTP to the TLS port is not served.
      await expect(fetch(server.url.replace('https:', 'http:') + '/healthz')).rejects.toThrow();
    } finally {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
