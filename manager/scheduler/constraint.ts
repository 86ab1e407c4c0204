// Placement constraints: matching a node against one (the parsing lives in
// spec/constraint.ts, shared with the CLI and the Control API's validation).
import { type Node, NodeRole } from '../../proto/gen/objects.js';
import type { Constraint } from '../../spec/constraint.js';

export { type Constraint, type ConstraintOp, parseConstraint, parseConstraints, parseSpreadPreference } from '../../spec/constraint.js';

/** The node's value for a constraint key; undefined when it has none. */
function nodeValue(n: Node, k: string): string | undefined {
  switch (k) {
    case 'node.id':
      return n.meta.id;
    case 'node.hostname':
      return n.description?.hostname || n.spec?.name;
    case 'node.role':
      return (n.spec?.role ?? n.role) === NodeRole.MANAGER ? 'manager' : 'worker';
    case 'node.platform.os':
      return n.description?.platform?.os;
    case 'node.platform.arch':
      return n.description?.platform?.architecture;
  }
  if (k.startsWith('node.labels.')) return n.spec?.labels?.[k.slice('node.labels.'.length)];
  if (k.startsWith('engine.labels.')) {
    // The daemon's own labels (`tsswarm daemon --label`), reported in its description.
    const labels = n.description?.engineLabels ?? {};
    const key = k.slice('engine.labels.'.length);
    return Object.hasOwn(labels, key) ? labels[key] : undefined;
  }
  return undefined;
}

/** Whether a node satisfies one constraint (a missing label is "not equal"). */
export function matchConstraint(n: Node, c: Constraint): boolean {
  const actual = nodeValue(n, c.key);
  // Swarm compares node attributes without case, label values exactly.
  const fold = !c.key.startsWith('node.labels.') && !c.key.startsWith('engine.labels.');
  const eq = actual !== undefined && (fold ? actual.toLowerCase() === c.value.toLowerCase() : actual === c.value);
  return c.op === '==' ? eq : !eq;
}
