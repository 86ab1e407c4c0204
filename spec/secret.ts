// A secret's or config's spec as the CLI and the Control API check it, without
// a store: Docker's name rule, the size of the value (Swarm's 500 KiB), the
// labels. The references services make to them are checked with the rest of
// the service spec (validate.ts, checkFileReferences).
import { TsswarmError } from '../lib/errors.js';
import { ConfigSpec, SecretSpec } from '../proto/gen/objects.js';
import { labelsAtMost } from './validate.js';

/** Secrets and configs: what the messages call them. */
export type FileObjectKind = 'secret' | 'config';

/**
 * The largest value is one byte less than this (Swarm: `len(data) < 500*1024`,
 * so 511,999 bytes pass and 512,000 are refused). Swarm has since raised the
 * config limit to 1000 KiB; tsswarm keeps 500 KiB for both, as Docker's
 * documentation says, so a task's references never carry more than that.
 */
export const MAX_FILE_OBJECT_BYTES = 500 * 1024;

/** Docker's rule for secret and config names (swarmkit manager/controlapi/common.go). */
export const OBJECT_NAME_RE = /^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9])?$/;
export const OBJECT_NAME_HINT = 'only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]';

function bad(field: string, message: string): TsswarmError {
  return new TsswarmError('INVALID_ARGUMENT', `${field} ${message}`);
}

/** A name Docker would accept for a secret or config. */
export function isObjectName(name: string): boolean {
  return OBJECT_NAME_RE.test(name);
}

/** Checks a name; the message names the field and Docker's rule. */
export function checkObjectName(kind: FileObjectKind, name: string): void {
  if (!name) throw bad('spec.name', `is required: give the ${kind} a name (tsswarm ${kind} create NAME FILE)`);
  if (!isObjectName(name))
    throw bad('spec.name', `"${name.length > 80 ? `${name.slice(0, 80)}…` : name}" is not a valid ${kind} name: ${OBJECT_NAME_HINT}`);
}

/** Checks the value's size: 1 byte to 500 KiB (less 1). */
export function checkObjectData(kind: FileObjectKind, bytes: number): void {
  if (bytes === 0)
    throw bad('spec.data', `is empty: a ${kind} holds 1 byte to 500 KiB (give a non-empty FILE, or - to read it from standard input)`);
  if (bytes >= MAX_FILE_OBJECT_BYTES)
    throw bad(
      'spec.data',
      `is ${bytes} bytes: a ${kind} must be smaller than 500 KiB (${MAX_FILE_OBJECT_BYTES} bytes): store large files in the image or a volume instead`,
    );
}

function checkLabels(labels: Readonly<Record<string, string>>): void {
  for (const k of Object.keys(labels)) if (!k) throw bad('spec.labels', 'has an empty key: write --label KEY=VALUE');
  labelsAtMost('spec.labels', '--label', labels);
}

/** A secret spec checked and copied (plain, every field at its default). Throws INVALID_ARGUMENT naming the field and the fix. */
export function validateSecretSpec(input: SecretSpec | null | undefined): SecretSpec {
  if (input === null || input === undefined) throw bad('spec', 'is required: send the secret spec');
  const spec = SecretSpec.toObject(input) as unknown as SecretSpec;
  checkObjectName('secret', spec.name);
  checkLabels(spec.labels);
  checkObjectData('secret', spec.data.length);
  return spec;
}

/** A config spec checked and copied, as validateSecretSpec. */
export function validateConfigSpec(input: ConfigSpec | null | undefined): ConfigSpec {
  if (input === null || input === undefined) throw bad('spec', 'is required: send the config spec');
  const spec = ConfigSpec.toObject(input) as unknown as ConfigSpec;
  checkObjectName('config', spec.name);
  checkLabels(spec.labels);
  checkObjectData('config', spec.data.length);
  return spec;
}
