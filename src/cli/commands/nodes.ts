import type { Command } from 'commander';
import type { NodeAddress } from '../../core/addresses.js';
import type { NodeDecision } from '../../core/decisions.js';
import { kindByName, type StoredObject } from '../../core/kinds.js';
import type { CliContext } from '../context.js';
import { describeObject } from '../format.js';
import { DESCRIBERS } from './resources.js';

/**
 * `formwork describe node`: the node as every object is described, with its addresses one a
 * line with the reason for each role (which API field or probe decided it), and the decisions
 * taken for it (size, image, login user, network, address) with their reasons. `-o json|yaml`
 * prints the object as stored.
 *
 * @example
 *   renderNode(node);
 *   // Addresses:
 *   //   192.0.2.7  public  (IPv4, ext-net): floating address on a router:external network; TCP/22 answered from the control plane
 *   // Decisions:
 *   //   size: t3.small — the cheapest (0.0208/h) of 9 sizes meeting small (…)
 */
export function renderNode(node: StoredObject): string {
  const view: StoredObject = { ...node };
  if (Array.isArray(node.addresses) && node.addresses.length) view.addresses = addressLines(node.addresses as NodeAddress[]);
  if (Array.isArray(node.decisions) && node.decisions.length) view.decisions = decisionLines(node.decisions as NodeDecision[]);
  return describeObject(kindByName('nodes')!, view);
}

function addressLines(addresses: NodeAddress[]): string {
  const width = Math.max(...addresses.map((a) => a.address.length));
  // A trailing newline keeps even one line under its label (describeObject indents multi-line text).
  return addresses
    .map((a) => `${a.address.padEnd(width)}  ${a.role.padEnd(7)} (IPv${a.family}${a.network ? `, ${a.network}` : ''}): ${a.reason ?? 'no reason recorded'}`)
    .join('\n') + '\n';
}

function decisionLines(decisions: NodeDecision[]): string {
  return decisions.map((d) => `${d.subject}: ${d.chosen} — ${d.reason}`).join('\n') + '\n';
}

export function register(_program: Command, _ctx: CliContext): void {
  DESCRIBERS.set('nodes', { fetch: (c, name) => c.client().get('nodes', name), render: (o) => renderNode(o as StoredObject) });
}
