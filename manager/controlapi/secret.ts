// The secret and config verbs of the Control API (create, get, list, remove),
// and the store checks of the references services make to them: each source
// resolved to the object's id and name, an unknown one refused. Neither kind
// can be changed but for its labels (as Docker's): a new value is a new
// object, and services move to it (docs/secrets.md).
// A secret's value is accepted on create and never answered, nor logged.
import { TsswarmError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import type { Logger } from '../../lib/log.js';
import type {
  ConfigResponse,
  CreateConfigRequest,
  CreateSecretRequest,
  GetConfigRequest,
  GetSecretRequest,
  ListConfigsRequest,
  ListConfigsResponse,
  ListSecretsRequest,
  ListSecretsResponse,
  RemoveConfigRequest,
  RemoveConfigResponse,
  RemoveSecretRequest,
  RemoveSecretResponse,
  SecretResponse,
  UpdateConfigRequest,
  UpdateSecretRequest,
} from '../../proto/gen/control.js';
import { Config, Meta, Secret, type Service, type ServiceSpec } from '../../proto/gen/objects.js';
import { type FileObjectKind, validateConfigSpec, validateSecretSpec } from '../../spec/secret.js';
import type { MemoryStore, ReadTx } from '../store/index.js';
import { findConfig, findSecret } from './refs.js';

const EMPTY = new Uint8Array(0);
const MAX_LISTED = 8;

/** The services whose spec references the secret or config `id` (tasks are not counted, as in Swarm). */
export function fileObjectUsers(tx: ReadTx, kind: FileObjectKind, id: string): Service[] {
  return tx.services.filter((s) => {
    const c = s.spec?.task?.container;
    return kind === 'secret' ? (c?.secrets ?? []).some((r) => r.secretId === id) : (c?.configs ?? []).some((r) => r.configId === id);
  });
}

/** Docker's refusal, `secret 'X' is in use by the following service: a, b`, with the fix. */
function inUse(kind: FileObjectKind, name: string, users: Service[]): TsswarmError {
  const names = users.map((s) => s.spec?.name || s.meta.id).sort();
  const shown = names.slice(0, MAX_LISTED).join(', ') + (names.length > MAX_LISTED ? `, and ${names.length - MAX_LISTED} more` : '');
  return new TsswarmError(
    'FAILED_PRECONDITION',
    `${kind} '${name}' is in use by the following service${names.length > 1 ? 's' : ''}: ${shown}: ` +
      `remove it from ${names.length > 1 ? 'them' : 'it'} first (\`tsswarm service update --${kind}-rm ${name} SERVICE\`)`,
  );
}

function duplicate(kind: FileObjectKind, name: string, holder: { meta: { id: string }; spec: { name: string } }): TsswarmError {
  return new TsswarmError(
    'ALREADY_EXISTS',
    `spec.name: ${kind} ${holder.spec.name} already exists (${holder.meta.id}; names are compared without case): ` +
      `choose another name, e.g. ${name}.v2 (a ${kind} cannot be changed: create a new one and move services to it)`,
  );
}

/**
 * Resolves the secret and config references of a (validated) service spec
 * against the store: each source (secretId, else secretName: an id, a name
 * or an id prefix) must name an existing object; the reference then holds the
 * object's id and name. An unknown one is INVALID_ARGUMENT naming the field.
 * Mutates `spec`; returns warnings.
 */
export function resolveServiceFileRefs(tx: ReadTx, spec: ServiceSpec): string[] {
  const c = spec.task?.container;
  if (!c) return [];
  const refused = (kind: FileObjectKind, i: number, ref: string, e: unknown): TsswarmError =>
    new TsswarmError('INVALID_ARGUMENT', `spec.task.container.${kind}s[${i}] (--${kind} ${ref}): ${(e as Error).message}`);
  c.secrets = c.secrets.map((r, i) => {
    const ref = r.secretId || r.secretName;
    let s: Secret;
    try {
      s = r.secretId ? (tx.secrets.get(r.secretId) ?? findSecret(tx, r.secretId)) : findSecret(tx, r.secretName);
    } catch (e) {
      throw refused('secret', i, ref, e);
    }
    return { ...r, secretId: s.meta.id, secretName: s.spec.name };
  });
  c.configs = c.configs.map((r, i) => {
    const ref = r.configId || r.configName;
    let x: Config;
    try {
      x = r.configId ? (tx.configs.get(r.configId) ?? findConfig(tx, r.configId)) : findConfig(tx, r.configName);
    } catch (e) {
      throw refused('config', i, ref, e);
    }
    return { ...r, configId: x.meta.id, configName: x.spec.name };
  });
  return [];
}

export interface SecretApiOptions {
  store: MemoryStore;
  logger: Logger;
  /** A linearizable read, `stale` when only local state could serve it; default: the local store's view. */
  read?: <R>(fn: (tx: ReadTx) => R) => Promise<{ value: R; stale: boolean }>;
  now?: () => number;
}

/** A secret as every response carries it: without its value. */
export function redactSecret(s: Secret): Secret {
  return { ...s, spec: { ...s.spec, data: EMPTY } };
}

function redactConfig(c: Config): Config {
  return { ...c, spec: { ...c.spec, data: EMPTY } };
}

/**
 * Swarm's rule for an update: the labels only. The same name, and no value or the same one (docker
 * stack deploy sends the value again on every deploy); anything else is refused, with the fix.
 */
function labelsOnly(
  kind: FileObjectKind,
  held: Secret | Config,
  version: number,
  spec: { name: string; data: Uint8Array } | null | undefined,
): void {
  if (!spec) throw new TsswarmError('INVALID_ARGUMENT', `spec: the ${kind}'s new spec is required`);
  if (version && Number(held.meta.version) !== version)
    throw new TsswarmError('CONFLICT', `update out of sequence: ${kind} ${held.spec.name} changed since version ${version}; read it again`);
  const sameData = spec.data.length === 0 || Buffer.compare(Buffer.from(spec.data), Buffer.from(held.spec.data)) === 0;
  if (spec.name !== held.spec.name || !sameData)
    throw new TsswarmError(
      'INVALID_ARGUMENT',
      `only updates to Labels are allowed: a ${kind}'s name and value cannot change; create a new ${kind} (e.g. ${held.spec.name}.v2) and move services to it`,
    );
}

abstract class FileObjectApiBase {
  protected readonly store: MemoryStore;
  protected readonly log: Logger;
  protected readonly read: <R>(fn: (tx: ReadTx) => R) => Promise<{ value: R; stale: boolean }>;
  protected readonly now: () => number;

  constructor(o: SecretApiOptions) {
    this.store = o.store;
    this.log = o.logger.child({ component: 'controlapi' });
    this.read = o.read ?? (async (fn) => ({ value: o.store.view(fn), stale: false }));
    this.now = o.now ?? Date.now;
  }

  protected meta(id: string): Meta {
    const now = this.now();
    return Meta.create({ id, createdAt: now, updatedAt: now });
  }
}

export class SecretApi extends FileObjectApiBase {
  async createSecret(req: CreateSecretRequest): Promise<SecretResponse> {
    const spec = validateSecretSpec(req.spec);
    const check = (tx: ReadTx): void => {
      const held = tx.secrets.byName(spec.name);
      if (held) throw duplicate('secret', spec.name, held);
    };
    this.store.view(check);
    const id = newId();
    await this.store.update((tx) => {
      check(tx);
      tx.secrets.create(Secret.create({ meta: this.meta(id), spec }));
    });
    this.log.info({ secret: id, name: spec.name, bytes: spec.data.length }, 'secret created');
    return { secret: redactSecret(this.store.view((tx) => tx.secrets.get(id))!), stale: false };
  }

  async getSecret(req: GetSecretRequest): Promise<SecretResponse> {
    const r = await this.read((tx) => redactSecret(findSecret(tx, req.ref)));
    return { secret: r.value, stale: r.stale };
  }

  async listSecrets(_req: ListSecretsRequest = {}): Promise<ListSecretsResponse> {
    const { value, stale } = await this.read((tx) => tx.secrets.list().map(redactSecret));
    return { secrets: value.sort((a, b) => a.spec.name.localeCompare(b.spec.name)), stale };
  }

  /** Labels only (Swarm's rule). */
  async updateSecret(req: UpdateSecretRequest): Promise<SecretResponse> {
    const held = this.store.view((tx) => findSecret(tx, req.ref));
    labelsOnly('secret', held, Number(req.version), req.spec);
    const spec = validateSecretSpec({ ...held.spec, labels: req.spec?.labels ?? {} });
    await this.store.update((tx) => tx.secrets.update(Secret.create({ ...held, meta: { ...held.meta, updatedAt: this.now() }, spec })));
    this.log.info({ secret: held.meta.id, name: held.spec.name }, 'secret labels updated');
    return { secret: redactSecret(this.store.view((tx) => tx.secrets.get(held.meta.id))!), stale: false };
  }

  /** Refused, naming them, while services reference the secret. */
  async removeSecret(req: RemoveSecretRequest): Promise<RemoveSecretResponse> {
    const s = this.store.view((tx) => findSecret(tx, req.ref));
    await this.store.update((tx) => {
      const users = fileObjectUsers(tx, 'secret', s.meta.id);
      if (users.length) throw inUse('secret', s.spec.name, users);
      tx.secrets.delete(s);
    });
    this.log.info({ secret: s.meta.id, name: s.spec.name }, 'secret removed');
    return {};
  }
}

export class ConfigApi extends FileObjectApiBase {
  async createConfig(req: CreateConfigRequest): Promise<ConfigResponse> {
    const spec = validateConfigSpec(req.spec);
    const check = (tx: ReadTx): void => {
      const held = tx.configs.byName(spec.name);
      if (held) throw duplicate('config', spec.name, held);
    };
    this.store.view(check);
    const id = newId();
    await this.store.update((tx) => {
      check(tx);
      tx.configs.create(Config.create({ meta: this.meta(id), spec }));
    });
    this.log.info({ config: id, name: spec.name, bytes: spec.data.length }, 'config created');
    return { config: this.store.view((tx) => tx.configs.get(id))!, stale: false };
  }

  /** With its data, as Docker's. */
  async getConfig(req: GetConfigRequest): Promise<ConfigResponse> {
    const r = await this.read((tx) => findConfig(tx, req.ref));
    return { config: r.value, stale: r.stale };
  }

  /** Without their data (GetConfig has it): the answer stays far below the message limit. */
  async listConfigs(_req: ListConfigsRequest = {}): Promise<ListConfigsResponse> {
    const { value, stale } = await this.read((tx) => tx.configs.list().map(redactConfig));
    return { configs: value.sort((a, b) => a.spec.name.localeCompare(b.spec.name)), stale };
  }

  /** Labels only (Swarm's rule). */
  async updateConfig(req: UpdateConfigRequest): Promise<ConfigResponse> {
    const held = this.store.view((tx) => findConfig(tx, req.ref));
    labelsOnly('config', held, Number(req.version), req.spec);
    const spec = validateConfigSpec({ ...held.spec, labels: req.spec?.labels ?? {} });
    await this.store.update((tx) => tx.configs.update(Config.create({ ...held, meta: { ...held.meta, updatedAt: this.now() }, spec })));
    this.log.info({ config: held.meta.id, name: held.spec.name }, 'config labels updated');
    return { config: this.store.view((tx) => tx.configs.get(held.meta.id))!, stale: false };
  }

  /** Refused, naming them, while services reference the config. */
  async removeConfig(req: RemoveConfigRequest): Promise<RemoveConfigResponse> {
    const c = this.store.view((tx) => findConfig(tx, req.ref));
    await this.store.update((tx) => {
      const users = fileObjectUsers(tx, 'config', c.meta.id);
      if (users.length) throw inUse('config', c.spec.name, users);
      tx.configs.delete(c);
    });
    this.log.info({ config: c.meta.id, name: c.spec.name }, 'config removed');
    return {};
  }
}
