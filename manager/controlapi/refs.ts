// How the Control API finds the object a request names, in Docker's order
// (moby's cluster helpers): the full id, then the name, then the id prefix.
// A name or prefix matching several objects is an error listing them, never
// the first one found; one shared resolver serves nodes, services, networks and tasks.
import { TsswarmError } from '../../lib/errors.js';
import type { Config, Network, Node, Secret, Service, Task } from '../../proto/gen/objects.js';
import type { ReadTx } from '../store/index.js';

/** How many matches an ambiguity error names before it counts the rest. */
export const MAX_LISTED = 8;

/** What the resolver needs to know about one kind of object. */
export interface RefKind<T> {
  /** `node`, `service`, ... as the messages say it. */
  what: string;
  /** Every object of the kind (the prefix and name passes scan them). */
  all: () => T[];
  /** The object with exactly this id, if any (a map lookup when the table has one). */
  byId: (id: string) => T | undefined;
  idOf: (o: T) => string;
  /** The names the object answers to (nodes: spec name and hostname; tasks: `service.slot.id`). */
  namesOf: (o: T) => string[];
  /** Whether names compare without case (services and networks: the store keeps them unique so). */
  foldCase: boolean;
  /** The name shown beside the id in an ambiguity error. */
  label: (o: T) => string;
  /** What a NOT_FOUND adds after "X not found: ". */
  notFoundHint: (ref: string) => string;
}

function listed<T>(k: RefKind<T>, matches: T[]): string {
  const shown = matches.slice(0, MAX_LISTED).map((o) => `${k.idOf(o)} (${k.label(o) || 'no name'})`);
  return shown.join(', ') + (matches.length > MAX_LISTED ? `, and ${matches.length - MAX_LISTED} more` : '');
}

/**
 * The one object `ref` names: full id, then exact name (without case where
 * the kind says so), then unique id prefix. Several objects with the name, or
 * several ids with the prefix, is INVALID_ARGUMENT listing them (ids and
 * names); none is NOT_FOUND naming the reference.
 */
export function resolveRef<T>(k: RefKind<T>, ref: string): T {
  if (!ref) throw new TsswarmError('INVALID_ARGUMENT', `ref is required: give a ${k.what} id, id prefix or name`);
  const exact = k.byId(ref);
  if (exact) return exact;
  const all = k.all();
  const want = k.foldCase ? ref.toLowerCase() : ref;
  const named = all.filter((o) => k.namesOf(o).some((n) => n !== '' && (k.foldCase ? n.toLowerCase() : n) === want));
  if (named.length === 1) return named[0]!;
  if (named.length > 1) {
    throw new TsswarmError(
      'INVALID_ARGUMENT',
      `${k.what} reference "${ref}" is ambiguous: ${named.length} ${k.what}s have that name (${listed(k, named)}); give the id instead`,
    );
  }
  const byPrefix = all.filter((o) => k.idOf(o).startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1) {
    throw new TsswarmError(
      'INVALID_ARGUMENT',
      `${k.what} reference "${ref}" is ambiguous: it is the start of ${byPrefix.length} ids (${listed(k, byPrefix)}); give more characters of the id`,
    );
  }
  throw new TsswarmError('NOT_FOUND', `${k.what} ${ref} not found: ${k.notFoundHint(ref)}`);
}

/** A task's name as Docker shows it: `service.slot.id`, or `service.node.id` for a global service's task. */
export function taskName(t: Task): string {
  return `${t.serviceName}.${t.slot ? String(t.slot) : t.nodeId}.${t.meta.id}`;
}

export function serviceKind(tx: ReadTx): RefKind<Service> {
  return {
    what: 'service',
    all: () => tx.services.list(),
    byId: (id) => tx.services.get(id),
    idOf: (s) => s.meta.id,
    namesOf: (s) => [s.spec?.name ?? ''],
    foldCase: true,
    label: (s) => s.spec?.name ?? '',
    notFoundHint: () => 'see `tsswarm service ls` for the services of this cluster',
  };
}

export function networkKind(tx: ReadTx): RefKind<Network> {
  return {
    what: 'network',
    all: () => tx.networks.list(),
    byId: (id) => tx.networks.get(id),
    idOf: (n) => n.meta.id,
    namesOf: (n) => [n.spec?.name ?? ''],
    foldCase: true,
    label: (n) => n.spec?.name ?? '',
    notFoundHint: (ref) => `see \`tsswarm network ls\`, or create it with \`tsswarm network create -d overlay ${ref}\``,
  };
}

export function nodeKind(tx: ReadTx): RefKind<Node> {
  return {
    what: 'node',
    all: () => tx.nodes.list(),
    byId: (id) => tx.nodes.get(id),
    idOf: (n) => n.meta.id,
    // Node names are not unique (two hosts may share a hostname): a shared one is ambiguous.
    namesOf: (n) => [...new Set([n.spec?.name ?? '', n.description?.hostname ?? ''])],
    foldCase: true,
    label: (n) => n.spec?.name || n.description?.hostname || '',
    notFoundHint: () => 'see `tsswarm node ls` for the nodes of this cluster',
  };
}

export function taskKind(tx: ReadTx): RefKind<Task> {
  return {
    what: 'task',
    all: () => tx.tasks.list(),
    byId: (id) => tx.tasks.get(id),
    idOf: (t) => t.meta.id,
    namesOf: (t) => [taskName(t)],
    foldCase: false,
    label: (t) => `${t.serviceName}.${t.slot || t.nodeId}`,
    notFoundHint: () => 'see `tsswarm service ps SERVICE` for the tasks of a service',
  };
}

export function secretKind(tx: ReadTx): RefKind<Secret> {
  return {
    what: 'secret',
    all: () => tx.secrets.list(),
    byId: (id) => tx.secrets.get(id),
    idOf: (s) => s.meta.id,
    namesOf: (s) => [s.spec?.name ?? ''],
    foldCase: true,
    label: (s) => s.spec?.name ?? '',
    notFoundHint: (ref) => `see \`tsswarm secret ls\`, or create it with \`tsswarm secret create ${ref} FILE\``,
  };
}

export function configKind(tx: ReadTx): RefKind<Config> {
  return {
    what: 'config',
    all: () => tx.configs.list(),
    byId: (id) => tx.configs.get(id),
    idOf: (c) => c.meta.id,
    namesOf: (c) => [c.spec?.name ?? ''],
    foldCase: true,
    label: (c) => c.spec?.name ?? '',
    notFoundHint: (ref) => `see \`tsswarm config ls\`, or create it with \`tsswarm config create ${ref} FILE\``,
  };
}

export const findService = (tx: ReadTx, ref: string): Service => resolveRef(serviceKind(tx), ref);
export const findSecret = (tx: ReadTx, ref: string): Secret => resolveRef(secretKind(tx), ref);
export const findConfig = (tx: ReadTx, ref: string): Config => resolveRef(configKind(tx), ref);
export const findNetwork = (tx: ReadTx, ref: string): Network => resolveRef(networkKind(tx), ref);
export const findNode = (tx: ReadTx, ref: string): Node => resolveRef(nodeKind(tx), ref);
export const findTask = (tx: ReadTx, ref: string): Task => resolveRef(taskKind(tx), ref);
