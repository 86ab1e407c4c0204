// Docker's service templates (`--hostname "{{.Node.Hostname}}-{{.Task.Slot}}"`):
// a deliberately small, strict parser for the placeholder forms Docker
// documents, and their expansion per task. Anything else holding `{{` is
// refused when the spec is stored, never passed through to the container.
import { TsswarmError } from './errors.js';

/** The values a placeholder can name, by its path (`.Node.Hostname`). */
export interface TemplateContext {
  service: { id: string; name: string };
  node: { id: string; hostname: string; os: string; architecture: string };
  task: { id: string; name: string; slot: string };
}

const FIELDS: Record<string, (c: TemplateContext) => string> = {
  '.Service.ID': (c) => c.service.id,
  '.Service.Name': (c) => c.service.name,
  '.Node.ID': (c) => c.node.id,
  '.Node.Hostname': (c) => c.node.hostname,
  '.Node.Platform.OS': (c) => c.node.os,
  '.Node.Platform.Architecture': (c) => c.node.architecture,
  '.Task.ID': (c) => c.task.id,
  '.Task.Name': (c) => c.task.name,
  '.Task.Slot': (c) => c.task.slot,
};

/** The placeholders we expand, in the order the error messages list them. */
export const TEMPLATE_PLACEHOLDERS: readonly string[] = Object.keys(FIELDS).map((f) => `{{${f}}}`);

/** More than any hostname, env entry or mount path needs: parsing stays cheap whatever is sent. */
export const MAX_TEMPLATE_LENGTH = 32 * 1024;

export type TemplatePart = { text: string } | { field: string };

const supported = (): string => TEMPLATE_PLACEHOLDERS.join(', ');

function refuse(field: string, value: string, why: string): TsswarmError {
  const shown = value.length > 120 ? `${value.slice(0, 120)}…` : value;
  return new TsswarmError('INVALID_ARGUMENT', `${field}: ${JSON.stringify(shown)} ${why}; the supported placeholders are ${supported()}`);
}

/** Whether the value holds a placeholder at all (plain values skip the parser). */
export const isTemplate = (value: string): boolean => value.includes('{{');

/**
 * Splits a template into text and placeholders. A placeholder is `{{.A.B}}`,
 * with optional spaces inside the braces, naming one of the supported paths;
 * anything else opened with `{{` (functions, pipes, trim markers, `.Service.Labels`,
 * an unclosed `{{`) is INVALID_ARGUMENT naming `field` and listing the supported ones.
 */
export function parseTemplate(field: string, value: string): TemplatePart[] {
  if (value.length > MAX_TEMPLATE_LENGTH) throw refuse(field, value, `is longer than ${MAX_TEMPLATE_LENGTH} characters`);
  const parts: TemplatePart[] = [];
  let i = 0;
  while (i < value.length) {
    const open = value.indexOf('{{', i);
    if (open < 0) {
      parts.push({ text: value.slice(i) });
      break;
    }
    if (open > i) parts.push({ text: value.slice(i, open) });
    const close = value.indexOf('}}', open + 2);
    if (close < 0) throw refuse(field, value, `has a "{{" at character ${open + 1} that is never closed with "}}"`);
    const inner = value.slice(open + 2, close);
    const path = inner.trim();
    if (inner.includes('{{')) throw refuse(field, value, `nests "{{" inside a placeholder at character ${open + 1}`);
    if (!(path in FIELDS)) {
      const hint =
        path.startsWith('.Service.Labels') || path.startsWith('index ')
          ? "uses the service's labels, which tasks do not carry to their node yet"
          : /^-|-$/.test(path)
            ? 'uses a whitespace trim marker ("{{-" or "-}}"), which is not supported'
            : `holds "{{${inner}}}", which is not a supported placeholder (no functions, pipes or other fields)`;
      throw refuse(field, value, hint);
    }
    parts.push({ field: path });
    i = close + 2;
  }
  return parts;
}

/** The template with every placeholder replaced by its value for one task. */
export function expandTemplate(field: string, value: string, ctx: TemplateContext): string {
  if (!isTemplate(value)) return value;
  return parseTemplate(field, value)
    .map((p) => ('text' in p ? p.text : FIELDS[p.field]!(ctx)))
    .join('');
}

/**
 * A context with typical values (25-character ids, slot 1): what the
 * Control API expands a template with to check that its result has the
 * right form (a hostname, a volume name) before the spec is stored.
 */
export function sampleTemplateContext(serviceName = 'service'): TemplateContext {
  const id = 'x'.repeat(25);
  return {
    service: { id, name: serviceName },
    node: { id, hostname: 'node', os: 'linux', architecture: 'x86_64' },
    task: { id, name: `${serviceName}.1.${id}`, slot: '1' },
  };
}
