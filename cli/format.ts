// `--format` and `--filter` of the listing and inspect commands, as the docker
// CLI reads them: `table`, `table TEMPLATE` (a header row from the fields'
// names, columns aligned as Go's tabwriter with docker's settings), a bare Go
// template run once per item, and `--filter key=value` collected into the
// filters map the Engine API takes. Pure; the templates run in gotemplate.ts.
import { UsageError } from '../lib/errors.js';
import type { DockerFilters } from '../spec/docker/filters.js';
import { executeTemplate as runTemplate, GO_TYPE, parseTemplate as readTemplate, type Template, TemplateError } from './gotemplate.js';

/** The docker CLI's prefix on every template error, parsing or executing: `template parsing error: template: :1: unclosed action`. */
function asDocker<A extends unknown[], R>(fn: (...a: A) => R): (...a: A) => R {
  return (...a) => {
    try {
      return fn(...a);
    } catch (e) {
      if (e instanceof TemplateError) throw new TemplateError(`template parsing error: ${e.message}`, { field: '--format' });
      throw e;
    }
  };
}
const parseTemplate = asDocker(readTemplate);
const executeTemplate = asDocker((t: Template, data: unknown, o?: { header?: boolean }) => runTemplate(t, data, o));

/** A listing's template fields: name → header (`DesiredState` → `DESIRED STATE`), in docker's order, and the Go type named in errors. */
export interface ListFields {
  goType: string;
  headers: Readonly<Record<string, string>>;
}

/** What `--format` asked for. */
export type FormatChoice = { kind: 'default' } | { kind: 'json' } | { kind: 'table'; template: string } | { kind: 'raw'; template: string };

/**
 * `--format` as docker reads it: absent or `table` → the command's own table;
 * `json` → our JSON; `table TEMPLATE` → a table of TEMPLATE's cells; anything
 * else a template per item. `\t` and `\n` written as two characters are tab
 * and newline, as docker's. The template is parsed here, so a malformed one
 * fails before any request.
 */
export function formatChoice(format: string | undefined): FormatChoice {
  if (format === undefined || format === '' || format === 'table') return { kind: 'default' };
  if (format === 'json') return { kind: 'json' };
  const tabsAndNewlines = (s: string): string => s.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const rest = format.slice('table'.length);
  const choice: FormatChoice =
    format.startsWith('table') && /^\s/.test(rest)
      ? { kind: 'table', template: tabsAndNewlines(rest.replace(/^ +| +$/g, '')) }
      : { kind: 'raw', template: tabsAndNewlines(format.replace(/^ +| +$/g, '')) };
  parseTemplate(choice.template); // a malformed template is refused before anything is asked of the daemon
  return choice;
}

/** Runs a template or table format over listing contexts; the output, newline-terminated rows. */
export function renderList(choice: FormatChoice & { kind: 'table' | 'raw' }, fields: ListFields, items: readonly object[]): string {
  const t = parseTemplate(choice.template);
  const rows = items.map((x) => executeTemplate(t, { ...x, [GO_TYPE]: fields.goType }) + '\n');
  if (choice.kind === 'raw') return rows.join('');
  const header = executeTemplate(t, new Map(Object.entries(fields.headers)), { header: true });
  return tabwrite(header + '\n' + rows.join(''));
}

/** Runs a template over inspected objects (docker-shaped JSON), one output per object. */
export function renderInspect(template: string, items: readonly object[]): string {
  const choice = formatChoice(template);
  const t = parseTemplate(choice.kind === 'raw' || choice.kind === 'table' ? choice.template : template);
  return items.map((x) => executeTemplate(t, x) + '\n').join('');
}

/**
 * Go's text/tabwriter as docker's formatter sets it up (minimum width 10,
 * padding 3, spaces): a cell ends at a tab; a column's width is set by the
 * run of adjacent lines that have that cell; text after a line's last tab is
 * not aligned.
 */
export function tabwrite(text: string, minWidth = 10, padding = 3): string {
  const lines = text.split('\n').map((l) => l.split('\t'));
  const width = (s: string): number => [...s].length;
  const widths: number[][] = lines.map(() => []);
  for (let col = 0; ; col++) {
    let any = false;
    let i = 0;
    while (i < lines.length) {
      if (lines[i]!.length - 1 <= col) {
        i++;
        continue;
      }
      any = true;
      let j = i;
      let w = minWidth;
      while (j < lines.length && lines[j]!.length - 1 > col) w = Math.max(w, width(lines[j++]![col]!) + padding);
      for (let k = i; k < j; k++) widths[k]![col] = w;
      i = j;
    }
    if (!any) break;
  }
  return lines
    .map((cells, i) => cells.map((c, col) => (col < cells.length - 1 ? c + ' '.repeat(widths[i]![col]! - width(c)) : c)).join(''))
    .join('\n');
}

/**
 * `--filter key=value` flags as a filters map, as docker's ParseFlag reads
 * them: the key trimmed and lower-cased, the value trimmed; no `=` is docker's
 * `bad format of filter (expected name=value)`.
 */
export function filtersFromFlags(flags: readonly string[]): DockerFilters {
  const out = new Map<string, Set<string>>();
  for (const f of flags) {
    const eq = f.indexOf('=');
    if (eq < 0) throw new UsageError(`bad format of filter (expected name=value): --filter ${JSON.stringify(f)}`, { field: '--filter' });
    const k = f.slice(0, eq).trim().toLowerCase();
    const v = f.slice(eq + 1).trim();
    if (!out.has(k)) out.set(k, new Set());
    out.get(k)!.add(v);
  }
  return out;
}

/** A Go time.Time's String(): `2026-12-07 21:38:47.123 +0000 UTC`. */
export function goTimeString(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-12-07T21:38:47.123Z
  const frac = iso.slice(20, 23).replace(/0+$/, '');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? `.${frac}` : ''} +0000 UTC`;
}

// Docker's listing fields (docker/cli cli/command/{service,task,node,network}/formatter.go), in their order.

export const SERVICE_FIELDS: ListFields = {
  goType: '*service.serviceContext',
  headers: { ID: 'ID', Name: 'NAME', Mode: 'MODE', Replicas: 'REPLICAS', Image: 'IMAGE', Ports: 'PORTS' },
};

export const TASK_FIELDS: ListFields = {
  goType: '*task.taskContext',
  headers: {
    ID: 'ID',
    Name: 'NAME',
    Image: 'IMAGE',
    Node: 'NODE',
    DesiredState: 'DESIRED STATE',
    CurrentState: 'CURRENT STATE',
    Error: 'ERROR',
    Ports: 'PORTS',
  },
};

export const NODE_FIELDS: ListFields = {
  goType: '*node.nodeContext',
  headers: {
    ID: 'ID',
    Self: '',
    Hostname: 'HOSTNAME',
    Status: 'STATUS',
    Availability: 'AVAILABILITY',
    ManagerStatus: 'MANAGER STATUS',
    EngineVersion: 'ENGINE VERSION',
    TLSStatus: 'TLS STATUS',
  },
};

export const NETWORK_FIELDS: ListFields = {
  goType: '*network.networkContext',
  headers: {
    ID: 'NETWORK ID',
    Name: 'NAME',
    Driver: 'DRIVER',
    Scope: 'SCOPE',
    IPv6: 'IPV6',
    Internal: 'INTERNAL',
    Labels: 'LABELS',
    CreatedAt: 'CREATED AT',
  },
};

/** docker/cli's secret and config listing fields (cli/command/{secret,config}/formatter.go). */
export const SECRET_FIELDS: ListFields = {
  goType: '*secret.secretContext',
  headers: { ID: 'ID', Name: 'NAME', Driver: 'DRIVER', CreatedAt: 'CREATED', UpdatedAt: 'UPDATED', Labels: 'LABELS' },
};
export const CONFIG_FIELDS: ListFields = {
  goType: '*config.configContext',
  headers: { ID: 'ID', Name: 'NAME', CreatedAt: 'CREATED', UpdatedAt: 'UPDATED', Labels: 'LABELS' },
};

/** Docker's `Labels` field of a listing: `k=v,k2=v2`. */
export const labelsText = (labels: Readonly<Record<string, string>> | undefined): string =>
  Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
