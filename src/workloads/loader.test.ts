import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FormworkError } from '../core/errors.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { checkPackText, loadBuiltinPacks, loadPack, packsStored, readPack, registerPacks, type WorkloadPack } from './loader.js';
import { setupPlanning } from './bootstrap.js';
import { packageRoot } from '../package.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const testdata = (p: string) => path.join(here, 'testdata', p);

function core(): WorkloadPack {
  return loadPack(path.join(packageRoot(), 'workloads', 'core'));
}

describe('loading packs', () => {
  it('loads the built-in core pack', () => {
    const pack = core();
    expect(pack.name).toBe('core');
    expect(pack.roles.map((r) => [r.name, r.implementation])).toEqual([
      ['provision', { kind: 'builtin', handler: 'provider.create' }],
      ['node-ready', { kind: 'builtin', handler: 'yardstick.ready' }],
    ]);
    expect(pack.roles[1]).toMatchObject({ requires: ['provision'], provides: ['node-ready'] });
  });

  it('reads the YAML shorthand, referenced files and templates/', () => {
    const etcd = loadPack(testdata('etcd'), { context: core().roles });
    const member = etcd.roles.find((r) => r.name === 'etcd-member')!;
    expect(member.inputs['cluster-token']).toEqual({ schema: { type: 'string' }, secret: true, default: 'generated' });
    expect(member.inputs['bind-address']).toEqual({ schema: { type: 'string' }, from: 'node.addresses.private[0]' });
    expect(etcd.defaults).toEqual({ 'etcd-version': '3.4', 'client-port': 2379 });
    expect(Object.keys(etcd.files).sort()).toEqual(['health.sh', 'member.sh']);
    const haproxy = loadPack(testdata('haproxy'), { context: [...core().roles, ...etcd.roles] });
    expect(Object.keys(haproxy.files).sort()).toEqual(['haproxy.sh', 'templates/haproxy.cfg.tmpl']);
  });

  it('refuses a pack whose requires cannot be met without its context', () => {
    expect(() => loadPack(testdata('etcd'))).toThrow(/unknown role or alias "node-ready"/);
  });

  it('lists every problem of a broken pack, with file, role and field', () => {
    let err: FormworkError | undefined;
    try {
      loadPack(testdata('broken'));
    } catch (e) {
      err = e as FormworkError;
    }
    expect(err?.code).toBe('WORKLOAD_INVALID');
    const errors = (err!.details as { errors: Array<{ file: string; role: string; field: string; message: string }> }).errors;
    expect(errors.map((e) => `${e.role}/${e.field}`).sort()).toEqual(
      ['bad-from/inputs.x.from', 'bad-schema/inputs.count.schema', 'loop-a/requires', 'no-file/implementation.file', 'self-conflict/conflicts', 'wants-ghost/requires'].sort(),
    );
    expect(errors.every((e) => e.file === path.join(testdata('broken'), 'workload.yaml'))).toBe(true);
  });

  it('reports structural problems: unknown keys, wrong types, YAML errors', () => {
    const { errors } = checkPackText('name: x\nversion: 1\nroles:\n  - name: a\n    require: [b]\n    implementation: { kind: magic }\n  - name: b\n    flags: 3\n    implementation: { kind: builtin, handler: h }\n', {});
    expect(errors.map((e) => `${e.role}/${e.field}`)).toEqual(['a/require', 'a/implementation.kind', 'b/flags']);
    expect(checkPackText('name: [', {}).errors[0].message).toMatch(/^YAML/);
    expect(checkPackText('name: ok\nversion: 1.0.0\nroles: []\n', {})).toMatchObject({ errors: [] });
  });

  it('reads a role\'s removal step and checks it as an implementation: kind, keys, file in the pack', () => {
    const yaml = (removal: string) => `name: x\nversion: 1.0.0\nroles:\n  - name: a\n    implementation: { kind: script, file: a.sh }\n    removal: ${removal}\n`;
    const ok = checkPackText(yaml('{ kind: script, file: leave.sh, sudo: true }'), { 'a.sh': '', 'leave.sh': '' });
    expect(ok.errors).toEqual([]);
    expect(ok.pack?.roles[0].removal).toEqual({ kind: 'script', file: 'leave.sh', sudo: true });
    const bad = (removal: string) => checkPackText(yaml(removal), { 'a.sh': '' }).errors.map((e) => `${e.field}: ${e.message}`);
    expect(bad('{ kind: script, file: leave.sh }')).toEqual(['removal.file: removal file "leave.sh" does not exist in the pack']);
    expect(bad('{ kind: script, file: ../x.sh }')).toEqual(['removal.file: removal file "../x.sh" must be a relative path inside the pack']);
    expect(bad('{ kind: magic }')[0]).toMatch(/^removal.kind: unknown implementation kind "magic"/);
    expect(bad('{ kind: script, fil: a.sh }')[0]).toMatch(/^removal.fil: unknown key "fil"/);
    expect(bad('leave.sh')[0]).toMatch(/^removal: "removal" must be/);
    // The shipped etcd pack has one, and its file travels with the pack.
    const etcd = loadPack(path.join(packageRoot(), 'workloads', 'etcd'), { context: core().roles });
    expect(etcd.roles.find((r) => r.name === 'etcd-member')?.removal).toEqual({ kind: 'script', file: 'remove.sh', sudo: true });
    expect(Object.keys(etcd.files)).toContain('remove.sh');
  });

  it('loads user folders after the built-in ones and refuses bad packs whole', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-packs-'));
    try {
      fs.cpSync(testdata('etcd'), path.join(dir, 'workloads', 'etcd'), { recursive: true });
      fs.cpSync(testdata('broken'), path.join(dir, 'extra', 'broken'), { recursive: true });
      const { packs, refused } = loadBuiltinPacks({ dataDir: dir, paths: [path.join(dir, 'extra')] });
      expect(packs.map((p) => p.name)).toEqual(expect.arrayContaining(['core', 'etcd']));
      expect(packs.map((p) => p.name)).not.toContain('broken');
      expect(refused.map((r) => r.error.code)).toEqual(['WORKLOAD_INVALID']);
      expect(readPack(path.join(dir, 'nothing')).errors[0].message).toMatch(/no workload.yaml/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(STORE_ENGINES)('registerPacks on $name', (engine) => {
  let t: TestStore;
  beforeEach(async () => {
    t = await engine.open();
  });
  afterEach(() => t.cleanup());

  it('stores workloads and roles, idempotently, checking requires across packs and stored roles', async () => {
    const c = core();
    const etcd = loadPack(testdata('etcd'), { context: c.roles });
    const first = await registerPacks(t.store, [c, etcd]);
    expect(first.workloads).toEqual([{ name: 'core', action: 'created' }, { name: 'etcd', action: 'created' }]);
    expect((await t.store.objects('roles').get('etcd-member')).spec).toMatchObject({ name: 'etcd-member', flags: ['cluster'] });
    expect((await t.store.objects('workloads').get('etcd')).files).toHaveProperty('member.sh');

    const seq = await t.store.events.latestSeq();
    const again = await registerPacks(t.store, [c, etcd]);
    expect(again.workloads.map((w) => w.action)).toEqual(['unchanged', 'unchanged']);
    expect(again.rolesChanged).toBe(0);
    expect(await t.store.events.latestSeq()).toBe(seq);

    // haproxy alone: its requires are met by the stored roles
    const haproxy = loadPack(testdata('haproxy'), { context: [...c.roles, ...etcd.roles] });
    await registerPacks(t.store, [haproxy]);
    // a pack dropping a role deletes it
    await registerPacks(t.store, [{ ...etcd, roles: etcd.roles.filter((r) => r.name === 'etcd-member') }]);
    expect(await t.store.objects('roles').find('etcd-healthy')).toBeUndefined();
  });

  it('packsStored: true only when registering would write nothing', async () => {
    const c = core();
    const etcd = loadPack(testdata('etcd'), { context: c.roles });
    expect(await packsStored(t.store, [c, etcd])).toBe(false);
    await registerPacks(t.store, [c, etcd]);
    expect(await packsStored(t.store, [c, etcd])).toBe(true);
    expect(await packsStored(t.store, [c])).toBe(true);
    const [member, ...rest] = etcd.roles;
    expect(await packsStored(t.store, [c, { ...etcd, files: { ...etcd.files, 'member.sh': 'changed' } }])).toBe(false);
    expect(await packsStored(t.store, [c, { ...etcd, roles: [{ ...member, retries: 7 }, ...rest] }])).toBe(false);
    expect(await packsStored(t.store, [c, { ...etcd, roles: rest }])).toBe(false); // a stored role it no longer has
    expect(await packsStored(t.store, [c, { ...etcd, version: '9.9.9' }])).toBe(false);
  });

  it('setupPlanning refuses a bad pack with every problem on every start, and stores the good ones once', async () => {
    fs.cpSync(testdata('etcd'), path.join(t.dataDir, 'workloads', 'etcd'), { recursive: true });
    fs.cpSync(testdata('broken'), path.join(t.dataDir, 'workloads', 'broken'), { recursive: true });
    const services = { store: t.store, dataDir: t.dataDir, appliers: new Map() };
    const problems = (r: Awaited<ReturnType<typeof setupPlanning>>) => r.refused.map((x) => (x.error.details as { errors: unknown[] }).errors.length);
    const first = await setupPlanning(services);
    expect(first.packs.map((p) => p.name)).toEqual(expect.arrayContaining(['core', 'etcd']));
    expect(problems(first)).toEqual([6]);
    const seq = await t.store.events.latestSeq();
    const second = await setupPlanning(services);
    expect(problems(second)).toEqual([6]);
    expect(await t.store.events.latestSeq()).toBe(seq);
    // Without the bad pack every pack is stored as it is: nothing to check or write.
    fs.rmSync(path.join(t.dataDir, 'workloads', 'broken'), { recursive: true });
    expect(await setupPlanning(services)).toMatchObject({ refused: [] });
    expect(await t.store.events.latestSeq()).toBe(seq);
    // A changed pack is checked again, and refused when it became invalid.
    fs.appendFileSync(path.join(t.dataDir, 'workloads', 'etcd', 'workload.yaml'), '  - name: needs-ghost\n    requires: [ghost]\n    implementation: { kind: builtin, handler: h }\n');
    const changed = await setupPlanning(services);
    expect(changed.refused.map((r) => r.error.message)).toEqual([expect.stringMatching(/unknown role or alias "ghost"/)]);
    expect(changed.packs.map((p) => p.name)).not.toContain('etcd');
  });

  it('refuses a pack whose requires are not met by anything, writing nothing', async () => {
    const etcd = readPack(testdata('etcd')).pack!;
    await expect(registerPacks(t.store, [etcd])).rejects.toMatchObject({ code: 'WORKLOAD_INVALID' });
    expect(await t.store.objects('workloads').all()).toEqual([]);
  });
});
