import { describe, expect, it } from 'vitest';
import { kindByName, type StoredObject } from '../core/kinds.js';
import { InvalidArgumentError } from 'commander';
import { DURATION_HINT } from '../core/durations.js';
import { describeObject, durationOption, humanAge, parseOutputFormat, renderObjects, renderTable } from './format.js';

const NOW = Date.parse('2024-06-01T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

describe('durationOption', () => {
  it('reads durations as core/durations.ts does and turns its refusal into a usage error quoting the forms', () => {
    expect(durationOption('1h30m')).toBe(5400);
    expect(() => durationOption('soon')).toThrow(InvalidArgumentError);
    expect(() => durationOption('soon')).toThrow(`"soon" is not a duration: ${DURATION_HINT}`);
  });
});

describe('humanAge', () => {
  it('is compact like kubectl', () => {
    expect(humanAge(ago(5), NOW)).toBe('5s');
    expect(humanAge(ago(119), NOW)).toBe('119s');
    expect(humanAge(ago(600), NOW)).toBe('10m');
    expect(humanAge(ago(5 * 3600), NOW)).toBe('5h');
    expect(humanAge(ago(3 * 86400), NOW)).toBe('3d');
    expect(humanAge(ago(800 * 86400), NOW)).toBe('2y');
    expect(humanAge(ago(-30), NOW)).toBe('0s');
    expect(humanAge(undefined, NOW)).toBe('<unknown>');
  });
});

describe('tables', () => {
  it('pads columns with three spaces and trims trailing blanks', () => {
    expect(renderTable(['NAME', 'STATE', 'AGE'], [['web-1', '', '5m'], ['db', 'ready', '1h']])).toBe(
      'NAME    STATE   AGE\nweb-1           5m\ndb      ready   1h\n',
    );
    expect(renderTable(['A', 'B'], [['x\ny', 'z']])).toBe('A     B\nx y   z\n');
  });

  it('shows kind-specific columns, the public address of a node, and AGE', () => {
    const node: StoredObject = {
      id: 'n1', name: 'web-1', version: 1, labels: {}, createdAt: ago(300), updatedAt: ago(300),
      provider: 'lab', state: 'ready', sizeNormalized: 'small', imageNormalized: 'debian-12',
      addresses: [{ address: '10.0.0.5', family: 4, role: 'private' }, { address: '203.0.113.7', family: 4, role: 'public' }],
    };
    const out = renderObjects(kindByName('nodes')!, [node], NOW);
    const [head, row] = out.trimEnd().split('\n');
    expect(head.split(/\s+/)).toEqual(['NAME', 'PROVIDER', 'STATE', 'ADDRESS', 'SIZE', 'IMAGE', 'DEPLOYMENT', 'AGE']);
    expect(row.split(/\s+/)).toEqual(['web-1', 'lab', 'ready', '203.0.113.7', 'small', 'debian-12', '<none>', '5m']);
    // A node being deleted says so where its state is; one whose deletion gave up, that.
    const deleting = renderObjects(kindByName('nodes')!, [{ ...node, deletion: { attempts: 1 } }, { ...node, name: 'web-2', deletion: { attempts: 6, failed: true } }], NOW);
    expect(deleting.trimEnd().split('\n').slice(1).map((r) => r.split(/\s+/)[2])).toEqual(['deleting', 'deletion-failed']);
    const users = renderObjects(kindByName('User')!, [{ ...node, name: 'ci', role: 'viewer' }], NOW);
    expect(users).toBe('NAME   ROLE     AGE\nci     viewer   5m\n');
  });

  it('parses -o values', () => {
    expect(parseOutputFormat('JSON')).toBe('json');
    expect(() => parseOutputFormat('xml')).toThrow(/table, json or yaml/);
  });
});

describe('describeObject', () => {
  it('lists the header, then set fields in the kind order, nested values as YAML', () => {
    const out = describeObject(
      kindByName('node')!,
      {
        id: 'n1', name: 'web-1', version: 2, labels: { env: 'prod' }, createdAt: ago(60), updatedAt: ago(30),
        provider: 'lab', state: 'ready', addresses: [{ address: '10.0.0.5', family: 4, role: 'private' }], extra: 'x',
      },
      NOW,
    );
    expect(out).toBe(
      [
        'Kind:      Node',
        'Name:      web-1',
        'ID:        n1',
        'Version:   2',
        'Labels:    env=prod',
        'Created:   2024-06-01T11:59:00.000Z (60s ago)',
        'Updated:   2024-06-01T11:59:30.000Z (30s ago)',
        'Provider:  lab',
        'State:     ready',
        'Addresses:',
        '  - address: 10.0.0.5',
        '    family: 4',
        '    role: private',
        'Extra:     x',
        '',
      ].join('\n'),
    );
    expect(out).not.toContain('Login User'); // unset fields are left out
  });
});
