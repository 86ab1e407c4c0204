// The secrets and configs the managers sent this node for its tasks
// (Assignments.dependencies, manager/dispatcher/assignments.ts), held in
// memory only, as SwarmKit's agent/secrets does: a full set replaces them,
// a change adds and removes. A task gets the files of its own references
// only; one whose secret or config has not arrived gets none, and its runner
// waits for it (agent/worker/task.ts). No value is ever logged.
import type { AssignedDependencies } from '../../proto/gen/control.js';
import type { Config, Secret, Task } from '../../proto/gen/objects.js';
import { DEFAULT_FILE_MODE, secretPath } from '../../spec/validate.js';
import type { ContainerFile } from '../runtime/index.js';

/** A task references a secret or config this node does not hold (yet). */
export class MissingDependencyError extends Error {
  constructor(readonly missing: string[]) {
    super(`${missing.join(', ')} ${missing.length === 1 ? 'has' : 'have'} not reached this node`);
    this.name = 'MissingDependencyError';
  }
}

function numericId(what: string, v: string): number {
  const s = v || '0';
  if (!/^\d{1,10}$/.test(s) || Number(s) > 0xfffffffe) throw new Error(`${what} ${JSON.stringify(s)} is not a numeric id`);
  return Number(s);
}

export class Dependencies {
  private readonly secrets = new Map<string, Secret>();
  private readonly configs = new Map<string, Config>();

  /** Applies one assignments message's dependencies; `full` replaces what is held. */
  apply(full: boolean, d: AssignedDependencies | null | undefined): void {
    if (full) {
      this.secrets.clear();
      this.configs.clear();
    }
    if (!d) return;
    for (const id of d.removedSecretIds) this.secrets.delete(id);
    for (const id of d.removedConfigIds) this.configs.delete(id);
    for (const s of d.secrets) this.secrets.set(s.meta.id, s);
    for (const c of d.configs) this.configs.set(c.meta.id, c);
  }

  /** Ids held now (tests, diagnostics: never the values). */
  held(): { secrets: string[]; configs: string[] } {
    return { secrets: [...this.secrets.keys()].sort(), configs: [...this.configs.keys()].sort() };
  }

  /**
   * The files of a task's secret and config references, with their targets,
   * owners and modes as the managers filled them. Throws
   * MissingDependencyError naming every reference not held here, or an Error
   * for a malformed reference.
   */
  files(t: Task): ContainerFile[] {
    const c = t.spec?.container;
    const out: ContainerFile[] = [];
    const missing: string[] = [];
    for (const [i, r] of (c?.secrets ?? []).entries()) {
      const s = this.secrets.get(r.secretId);
      const name = r.secretName || r.secretId;
      if (!s) {
        missing.push(`secret ${name} (${r.secretId})`);
        continue;
      }
      const tg = r.target;
      out.push({
        target: secretPath(tg?.name || name),
        data: s.spec.data,
        uid: numericId(`secrets[${i}] (${name}) uid`, tg?.uid ?? ''),
        gid: numericId(`secrets[${i}] (${name}) gid`, tg?.gid ?? ''),
        mode: tg?.mode || DEFAULT_FILE_MODE,
      });
    }
    for (const [i, r] of (c?.configs ?? []).entries()) {
      const x = this.configs.get(r.configId);
      const name = r.configName || r.configId;
      if (!x) {
        missing.push(`config ${name} (${r.configId})`);
        continue;
      }
      const tg = r.target;
      const target = tg?.name || `/${name}`;
      out.push({
        target: target.startsWith('/') ? target : `/${target}`,
        data: x.spec.data,
        uid: numericId(`configs[${i}] (${name}) uid`, tg?.uid ?? ''),
        gid: numericId(`configs[${i}] (${name}) gid`, tg?.gid ?? ''),
        mode: tg?.mode || DEFAULT_FILE_MODE,
      });
    }
    if (missing.length) throw new MissingDependencyError([...new Set(missing)]);
    return out;
  }
}
