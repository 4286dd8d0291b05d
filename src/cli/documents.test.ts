import { describe, expect, it } from 'vitest';
import { FormworkError } from '../core/errors.js';
import { parseDocuments } from './documents.js';

const err = (fn: () => unknown): FormworkError => {
  try {
    fn();
  } catch (e) {
    return e as FormworkError;
  }
  throw new Error('expected an error');
};

describe('parseDocuments (YAML)', () => {
  it('reads multi-document YAML with the line each document starts on', () => {
    const text = '# nodes\nkind: Node\nname: a\nlabels: {env: prod}\n---\n\nkind: nodes\nname: b\n---\n';
    const docs = parseDocuments(text, 'n.yaml');
    expect(docs.map((d) => [d.doc.kind, d.doc.name, d.line, d.index])).toEqual([
      ['Node', 'a', 2, 0],
      ['Node', 'b', 7, 1],
    ]);
    expect(docs[0].doc.labels).toEqual({ env: 'prod' });
  });

  it('accepts a YAML list of documents and a {items: [...]} list', () => {
    expect(parseDocuments('- kind: Node\n  name: a\n- kind: Role\n  name: r\n  spec: {}\n', 'l.yaml').map((d) => [d.doc.kind, d.line])).toEqual([
      ['Node', 1],
      ['Role', 3],
    ]);
    expect(parseDocuments('items:\n  - {kind: Node, name: a}\n', 'i.yaml')).toHaveLength(1);
  });

  it('names the file, line and column of a syntax error', () => {
    const e = err(() => parseDocuments('kind: Node\nname: a\n---\nkind: Node\n  name: b\n', 'bad.yaml'));
    expect(e.code).toBe('MALFORMED_BODY');
    expect(e.message).toMatch(/^bad\.yaml:4:7: invalid YAML: Nested mappings/);
    expect(e.message).toContain('\n  kind: Node\n        ^');
    expect(e.details).toMatchObject({ file: 'bad.yaml', line: 4, column: 7 });
  });

  it('refuses duplicate keys, missing kind or name, and non-objects, naming the line', () => {
    expect(err(() => parseDocuments('kind: Node\nname: a\nname: b\n', 'd.yaml')).message).toMatch(/^d\.yaml:3:1: invalid YAML: Map keys must be unique/);
    expect(err(() => parseDocuments('kind: Node\nname: a\n---\nname: b\n', 'k.yaml')).message).toBe('k.yaml:4: document 2 has no "kind"');
    expect(err(() => parseDocuments('kind: Node\n', 'n.yaml')).message).toBe('n.yaml:1: document 1 (Node) has no "name"');
    expect(err(() => parseDocuments('just a string\n', 's.yaml')).message).toMatch(/^s\.yaml:1: document 1 is not an object/);
  });

  it('skips empty documents and returns none for an empty file', () => {
    expect(parseDocuments('', 'e.yaml')).toEqual([]);
    expect(parseDocuments('---\n---\n', 'e.yaml')).toEqual([]);
  });
});

describe('parseDocuments (JSON)', () => {
  it('reads an object, an array, and {items}', () => {
    expect(parseDocuments('{"kind":"Node","name":"a"}', 'a.json')).toHaveLength(1);
    expect(parseDocuments('[{"kind":"Node","name":"a"},{"kind":"user","name":"u","role":"viewer"}]', 'b.json').map((d) => d.doc.kind)).toEqual(['Node', 'User']);
    expect(parseDocuments('{"items":[{"kind":"Node","name":"a"}]}', 'c.json')).toHaveLength(1);
  });

  it('names the line and column of a JSON syntax error', () => {
    const e = err(() => parseDocuments('{\n  "kind": "Node",\n  "name": "a",\n}\n', 'bad.json'));
    expect(e.code).toBe('MALFORMED_BODY');
    expect(e.message).toMatch(/^bad\.json:4:1: invalid JSON: /);
    expect(e.message).toContain('\n  }\n  ^');
    expect(err(() => parseDocuments('[{"kind":"Node",', 'cut.json')).message).toMatch(/^cut\.json:1:\d+: invalid JSON/);
  });

  it('names the item of a bad array element', () => {
    expect(err(() => parseDocuments('[{"kind":"Node","name":"a"},{"name":"b"}]', 'x.json')).message).toBe('x.json: item 1 has no "kind"');
  });
});
