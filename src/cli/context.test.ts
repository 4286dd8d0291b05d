import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ENDPOINT, resolveAll, resolveDataDir, resolveEndpoint, resolveToken, type FileReader } from './context.js';

const files =
  (map: Record<string, string>): FileReader =>
  (f) =>
    map[f];

describe('data dir resolution', () => {
  it('prefers --data-dir, then FORMWORK_DATA_DIR, then ./.formwork, relative to cwd', () => {
    expect(resolveDataDir('d1', { FORMWORK_DATA_DIR: '/e' }, '/w')).toBe('/w/d1');
    expect(resolveDataDir(undefined, { FORMWORK_DATA_DIR: '/e' }, '/w')).toBe('/e');
    expect(resolveDataDir(undefined, { FORMWORK_DATA_DIR: '  ' }, '/w')).toBe('/w/.formwork');
    expect(resolveDataDir(undefined, {}, '/w')).toBe('/w/.formwork');
  });
});

describe('endpoint resolution', () => {
  const fs = files({ '/d/server.json': JSON.stringify({ url: 'http://127.0.0.1:5555', pid: 1 }) });

  it('prefers --endpoint, then FORMWORK_ENDPOINT, then server.json, then the default', () => {
    expect(resolveEndpoint('http://a:1/', { FORMWORK_ENDPOINT: 'http://b:2' }, '/d', fs)).toEqual({ endpoint: 'http://a:1', source: 'flag' });
    expect(resolveEndpoint(undefined, { FORMWORK_ENDPOINT: 'b:2' }, '/d', fs)).toEqual({ endpoint: 'http://b:2', source: 'env' });
    expect(resolveEndpoint(undefined, {}, '/d', fs, () => true)).toEqual({ endpoint: 'http://127.0.0.1:5555', source: 'server.json' });
    expect(resolveEndpoint(undefined, {}, '/other', fs)).toEqual({ endpoint: DEFAULT_ENDPOINT, source: 'default' });
  });

  it('skips a server.json whose server process is gone, and says so', () => {
    expect(resolveEndpoint(undefined, {}, '/d', fs, () => false)).toEqual({
      endpoint: DEFAULT_ENDPOINT,
      source: 'default',
      stale: { file: '/d/server.json', pid: 1, url: 'http://127.0.0.1:5555' },
    });
  });

  it('says whose server it is when server.json cannot be read (a data dir made by sudo scripts/up.sh)', () => {
    const denied: FileReader = () => {
      throw Object.assign(new Error("EACCES: permission denied, open '/d/server.json'"), { code: 'EACCES' });
    };
    expect(() => resolveEndpoint(undefined, {}, '/d', denied)).toThrow(
      'cannot read /d/server.json (permission denied): the server for /d was started by another user (root, if you ran `sudo scripts/up.sh`); run formwork as that user (e.g. with sudo)',
    );
    expect(resolveEndpoint('http://a:1', {}, '/d', denied).source).toBe('flag'); // not read at all
  });

  it('refuses a corrupt server.json rather than guessing', () => {
    expect(() => resolveEndpoint(undefined, {}, '/d', files({ '/d/server.json': '{' }))).toThrow(/server\.json is not valid JSON/);
  });

  it('refuses a malformed endpoint', () => {
    expect(() => resolveEndpoint('ftp://x', {}, '/d', fs)).toThrow(/only http/);
  });
});

describe('token resolution', () => {
  const fs = files({ '/d/admin.token': 'fwt_file\n' });
  it('prefers --token, then FORMWORK_TOKEN, then DATA_DIR/admin.token', () => {
    expect(resolveToken('t1', { FORMWORK_TOKEN: 't2' }, '/d', fs)).toEqual({ token: 't1', source: 'flag' });
    expect(resolveToken(undefined, { FORMWORK_TOKEN: 't2' }, '/d', fs)).toEqual({ token: 't2', source: 'env' });
    expect(resolveToken(undefined, {}, '/d', fs)).toEqual({ token: 'fwt_file', source: 'admin.token' });
    expect(resolveToken(undefined, {}, '/none', fs)).toEqual({});
  });

  it('goes without a token when the token file is unreadable', () => {
    const denied: FileReader = () => {
      throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    };
    expect(resolveToken(undefined, {}, '/d', denied)).toEqual({});
  });
});

describe('resolveAll', () => {
  it('reads server.json and admin.token from the resolved data dir', () => {
    const fs = files({ '/w/x/server.json': '{"url":"http://h:9"}', '/w/x/admin.token': 'tok' });
    expect(resolveAll({ dataDir: 'x', ca: 'ca.pem' }, { env: {}, cwd: '/w' }, fs)).toEqual({
      dataDir: '/w/x',
      endpoint: 'http://h:9',
      endpointSource: 'server.json',
      token: 'tok',
      tokenSource: 'admin.token',
      caFile: path.resolve('/w', 'ca.pem'),
    });
    expect(resolveAll({}, { env: { FORMWORK_DATA_DIR: '/w/x', FORMWORK_CA: '/c.pem' }, cwd: '/' }, fs).caFile).toBe('/c.pem');
  });
});
