// How the Control API finds the object a request names: an exact id, a name
// (services, without case; nodes by hostname), or a unique id prefix. An
// ambiguous prefix is an error that lists the candidates.
import { TsswarmError } from '../../lib/errors.js';
import type { Node, Service, Task } from '../../proto/gen/objects.js';
import type { ReadTx } from '../store/index.js';

const MAX_LISTED = 5;

function ambiguous(what: string, ref: string, matches: string[]): TsswarmError {
  const shown = matches.slice(0, MAX_LISTED).join(', ') + (matches.length > MAX_LISTED ? `, and ${matches.length - MAX_LISTED} more` : '');
  return new TsswarmError('INVALID_ARGUMENT', `${what} reference "${ref}" is ambiguous: it matches ${shown}; give more characters of the id`);
}

export function findService(tx: ReadTx, ref: string): Service {
  if (!ref) throw new TsswarmError('INVALID_ARGUMENT', 'ref is required: give a service id, id prefix or name');
  const exact = tx.services.get(ref) ?? tx.services.byName(ref);
  if (exact) return exact;
  const byPrefix = tx.services.filter((s) => s.meta!.id.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1) throw ambiguous('service', ref, byPrefix.map((s) => `${s.meta!.id} (${s.spec?.name})`));
  throw new TsswarmError('NOT_FOUND', `service ${ref} not found: see \`tsswarm service ls\` for the services of this cluster`);
}

export function findTask(tx: ReadTx, ref: string): Task {
  if (!ref) throw new TsswarmError('INVALID_ARGUMENT', 'ref is required: give a task id or id prefix');
  const exact = tx.tasks.get(ref);
  if (exact) return exact;
  const byPrefix = tx.tasks.filter((t) => t.meta!.id.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1) throw ambiguous('task', ref, byPrefix.map((t) => `${t.meta!.id} (${t.serviceName}.${t.slot || t.nodeId})`));
  throw new TsswarmError('NOT_FOUND', `task ${ref} not found: see \`tsswarm service ps SERVICE\` for the tasks of a service`);
}

export function findNode(tx: ReadTx, ref: string): Node {
  const nodes = tx.nodes.list();
  const exact = nodes.find((n) => n.meta!.id === ref) ?? nodes.find((n) => n.description?.hostname === ref || n.spec?.name === ref);
  if (exact) return exact;
  const byPrefix = nodes.filter((n) => n.meta!.id.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1) throw ambiguous('node', ref, byPrefix.map((n) => `${n.meta!.id} (${n.description?.hostname || n.spec?.name})`));
  throw new TsswarmError('NOT_FOUND', `node ${ref} not found: see \`tsswarm node ls\` for the nodes of this cluster`);
}
