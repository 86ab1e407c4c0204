// Placement constraints and preferences as a service spec writes them
// (`node.role==worker`, `node.labels.zone!=east`, `spread=node.labels.zone`):
// parsing only, shared by the CLI's flags, the Control API's validation and
// the scheduler's matching, so no side accepts what placement cannot read.
import { TsswarmError } from '../lib/errors.js';

export type ConstraintOp = '==' | '!=';

export interface Constraint {
  /** `node.role`, `node.labels.zone`, `engine.labels.x`, ... (fixed keys lower-cased; label names as written). */
  key: string;
  op: ConstraintOp;
  value: string;
}

const fixedKeys = ['node.id', 'node.hostname', 'node.role', 'node.platform.os', 'node.platform.arch'] as const;
const labelPrefixes = ['node.labels.', 'engine.labels.'] as const;

function invalid(field: string, c: string, why: string): TsswarmError {
  return new TsswarmError('INVALID_ARGUMENT', `${field}: constraint "${c}" ${why}`);
}

/**
 * `node.labels.zone == east` → {key: 'node.labels.zone', op: '==', value: 'east'}.
 * Throws INVALID_ARGUMENT naming the constraint for an unknown key, a missing
 * operator or an empty value. `field` names where it came from in messages.
 */
export function parseConstraint(c: string, field = 'spec.task.placement.constraints'): Constraint {
  const m = /^(.*?)(==|!=)(.*)$/.exec(c);
  if (!m) throw invalid(field, c, 'has no operator: write KEY==VALUE or KEY!=VALUE, e.g. node.role==worker');
  const key = m[1]!.trim();
  const op = m[2] as ConstraintOp;
  const value = m[3]!.trim();
  if (/[=!<>]/.test(value)) throw invalid(field, c, 'has more than one operator: write KEY==VALUE or KEY!=VALUE');
  const lower = key.toLowerCase();
  const prefix = labelPrefixes.find((p) => lower.startsWith(p));
  if (prefix) {
    if (key.length === prefix.length) throw invalid(field, c, `names no label: write ${prefix}KEY==VALUE`);
  } else if (!(fixedKeys as readonly string[]).includes(lower)) {
    throw invalid(field, c, `has an unknown key "${key}": use one of ${fixedKeys.join(', ')}, node.labels.KEY or engine.labels.KEY`);
  }
  if (value === '') throw invalid(field, c, 'has no value: write KEY==VALUE');
  if (lower === 'node.role' && !['manager', 'worker'].includes(value.toLowerCase())) {
    throw invalid(field, c, `compares node.role with "${value}": a role is manager or worker`);
  }
  return { key: prefix ? prefix + key.slice(prefix.length) : lower, op, value };
}

/** Every constraint parsed; the first bad one throws. */
export function parseConstraints(cs: readonly string[], field = 'spec.task.placement.constraints'): Constraint[] {
  return cs.map((c) => parseConstraint(c, field));
}

/** `spread=node.labels.zone` (or the bare `node.labels.zone`) → the label key `zone`. */
export function parseSpreadPreference(p: string, field = 'spec.task.placement.preferences'): string {
  const s = p.startsWith('spread=') ? p.slice('spread='.length) : p;
  const prefix = 'node.labels.';
  if (!s.startsWith(prefix) || s.length === prefix.length || /\s|=/.test(s)) {
    throw new TsswarmError('INVALID_ARGUMENT', `${field}: placement preference "${p}" is not supported: write spread=node.labels.KEY`);
  }
  return s.slice(prefix.length);
}
