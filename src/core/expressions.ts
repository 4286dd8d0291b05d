/**
 * The `from` expressions a role input or a binding override may read (`node.…`,
 * `deployment.…`, `outputs(ROLE).…`), parsed. Apart from attrib resolution
 * (core/attribs.ts) because the role checks (core/roles.ts) parse them too, and attribs
 * reads role specs: each imports this, neither the other.
 */

export type PathSegment = string | number;
export type Expression =
  | { kind: 'node'; path: PathSegment[] }
  | { kind: 'deployment'; path: PathSegment[] }
  | { kind: 'outputs'; role: string; path: PathSegment[] };

/** The node fields an expression may read (`node.<field>…`). */
export const NODE_FIELDS = ['name', 'addresses', 'loginUser', 'zone', 'attribs', 'provider', 'sizeNormalized', 'sizeNative', 'imageNormalized', 'imageNative', 'nativeId', 'inventory', 'state'];

/**
 * Parses `node.addresses.private[0]`, `node.name`, `deployment.attribs.NAME`,
 * `outputs(ROLE).FIELD[.more]`. `{ error }` names what is wrong.
 */
export function parseExpression(expr: string): Expression | { error: string } {
  if (typeof expr !== 'string') return { error: 'an expression must be a string' };
  const s = expr.trim();
  let root: Expression;
  let rest: string;
  const out = /^outputs\(\s*([a-z0-9][a-z0-9._-]*)\s*\)(.*)$/.exec(s);
  if (out) {
    root = { kind: 'outputs', role: out[1], path: [] };
    rest = out[2];
    if (!rest) return { error: `"${expr}": say which output, e.g. outputs(${out[1]}).FIELD` };
  } else if (s.startsWith('node.')) {
    root = { kind: 'node', path: [] };
    rest = s.slice(4);
  } else if (s.startsWith('deployment.')) {
    root = { kind: 'deployment', path: [] };
    rest = s.slice(10);
  } else {
    return { error: `"${expr}" is not an expression: use node.…, deployment.… or outputs(ROLE).FIELD` };
  }
  const re = /^(?:\.([A-Za-z0-9_-]+)|\[(\d+)\])/;
  while (rest.length) {
    const m = re.exec(rest);
    if (!m) return { error: `"${expr}": cannot read "${rest}" (use .field or [index])` };
    root.path.push(m[1] !== undefined ? m[1] : Number(m[2]));
    rest = rest.slice(m[0].length);
  }
  if (root.kind === 'node' && !NODE_FIELDS.includes(String(root.path[0]))) {
    return { error: `"${expr}": a node has no field "${String(root.path[0])}"; known: ${NODE_FIELDS.join(', ')}` };
  }
  if (root.kind === 'deployment' && !['name', 'attribs'].includes(String(root.path[0]))) {
    return { error: `"${expr}": use deployment.name or deployment.attribs.NAME` };
  }
  return root;
}
