// The rule for a named volume's name, shared by the Control API (which checks
// a spec before storing it) and the agent (which checks the name again after
// expanding a template for one task, since only then is the name known).

/** Docker's volume-name form: letters, digits, "_", "." and "-", starting with a letter or digit, at least 2 characters. */
export const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
/** A volume is a directory on the node: its name is one path component (NAME_MAX). */
export const MAX_VOLUME_NAME_LENGTH = 255;

/** Whether `name` can name a volume: never a path, never "." or "..". */
export function isVolumeName(name: string): boolean {
  return name.length <= MAX_VOLUME_NAME_LENGTH && VOLUME_NAME_RE.test(name);
}

/** The hint every refusal of a volume name ends with. */
export const VOLUME_NAME_HINT = `use letters, digits, "_", "." and "-" (at most ${MAX_VOLUME_NAME_LENGTH} characters; for a host path use type=bind)`;
