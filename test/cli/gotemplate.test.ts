// The Go template subset behind --format: fields, functions, blocks, tables,
// and Go's error texts for templates that are malformed or name a missing field.
import { describe, expect, it } from 'vitest';
import { filtersFromFlags, formatChoice, goTimeString, renderInspect, renderList, SERVICE_FIELDS, tabwrite } from '../../cli/format.js';
import { GO_TYPE, MAX_TEMPLATE_DEPTH, parseTemplate, renderTemplate } from '../../cli/gotemplate.js';

const svc = {
  ID: 'abc123',
  Spec: { Name: 'web', Labels: { 'com.example.tier': 'front', env: 'prod' }, Mode: { Replicated: { Replicas: 3 } } },
  Endpoint: { Ports: [{ PublishedPort: 8080, TargetPort: 80 }] },
};

describe('Go template subset', () => {
  it('prints fields, nested fields, dot and text around them', () => {
    expect(renderTemplate('{{.ID}}: {{.Spec.Name}}', svc)).toBe('abc123: web');
    expect(renderTemplate('{{.Spec.Mode.Replicated.Replicas}}', svc)).toBe('3');
    expect(renderTemplate('x{{.}}y', 'mid')).toBe('xmidy');
  });

  it('json marshals without HTML escaping, as docker`s json function', () => {
    expect(renderTemplate('{{json .Spec.Labels}}', svc)).toBe('{"com.example.tier":"front","env":"prod"}');
    expect(renderTemplate('{{json .}}', { A: '<&>' })).toBe('{"A":"<&>"}');
  });

  it('index reads labels whose keys are not identifiers; a missing map key is <no value>', () => {
    expect(renderTemplate('{{index .Spec.Labels "com.example.tier"}}', svc)).toBe('front');
    expect(renderTemplate('{{.Spec.Labels.env}}/{{.Spec.Labels.nope}}', svc)).toBe('prod/<no value>');
  });

  it('a missing struct field is Go`s error, with line, column and the field', () => {
    expect(() => renderTemplate('{{.Foo}}', svc)).toThrow(
      `template: :1:2: executing "" at <.Foo>: can't evaluate field Foo in type struct`,
    );
    expect(() => renderTemplate('ab\n  {{.Spec.Nope}}', { ...svc, [GO_TYPE]: 'swarm.Service' })).toThrow(
      `template: :2:4: executing "" at <.Spec.Nope>: can't evaluate field Nope in type struct`,
    );
    expect(() => renderTemplate('{{.Foo}}', { ID: 'x', [GO_TYPE]: '*service.serviceContext' })).toThrow(
      `can't evaluate field Foo in type *service.serviceContext`,
    );
    expect(() => renderTemplate('{{.ID.Length}}', svc)).toThrow(`can't evaluate field Length in type string`);
  });

  it('pipelines and docker`s functions', () => {
    expect(renderTemplate('{{.Spec.Name | upper}}', svc)).toBe('WEB');
    expect(renderTemplate('{{lower "ABC"}} {{title "hello world"}} {{truncate .ID 3}}', svc)).toBe('abc Hello World abc');
    expect(renderTemplate('{{join (split "a,b,c" ",") "-"}}', {})).toBe('a-b-c');
    expect(renderTemplate('[{{pad "x" 1 2}}]', {})).toBe('[ x  ]');
    expect(renderTemplate('{{len .Endpoint.Ports}} {{println "a" 1}}', svc)).toBe('1 a 1\n');
    expect(renderTemplate('{{print 1 2 "x" 3}}', {})).toBe('1 2x3');
    expect(renderTemplate('[{{printf "%-6s|%4d|%q|%v|%%|%s" .ID 42 "a" true}}]', svc)).toBe('[abc123|  42|"a"|true|%|%!s(MISSING)]');
  });

  it('if/else if/else, with, eq/ne/not/and/or', () => {
    const t = '{{if eq .M "global"}}G{{else if eq .M "replicated"}}R{{else}}?{{end}}';
    expect(renderTemplate(t, { M: 'global' })).toBe('G');
    expect(renderTemplate(t, { M: 'replicated' })).toBe('R');
    expect(renderTemplate(t, { M: 'job' })).toBe('?');
    expect(renderTemplate('{{if not .A}}no{{end}}{{if and .B .C}}both{{end}}{{or .A .C}}', { A: '', B: 1, C: 'c' })).toBe('nobothc');
    expect(renderTemplate('{{with .Spec}}{{.Name}}{{end}}{{with .Missing}}x{{else}}none{{end}}', { ...svc, Missing: '' })).toBe('webnone');
    expect(renderTemplate('{{if ne 1 2}}y{{end}}', {})).toBe('y');
  });

  it('range over lists and maps (keys sorted), with variables, and its else', () => {
    expect(renderTemplate('{{range .Endpoint.Ports}}{{.PublishedPort}}->{{.TargetPort}} {{end}}', svc)).toBe('8080->80 ');
    expect(renderTemplate('{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}};{{end}}', svc)).toBe('com.example.tier=front;env=prod;');
    expect(renderTemplate('{{range .L}}x{{else}}empty{{end}}', { L: [] })).toBe('empty');
    expect(renderTemplate('{{range .L}}{{$.N}}{{.}}{{end}}', { L: [1, 2], N: 'n' })).toBe('n1n2');
    expect(renderTemplate('{{$x := .ID}}{{$x}}{{$x}}', svc)).toBe('abc123abc123');
  });

  it('trim markers and comments', () => {
    expect(renderTemplate('a  {{- .ID -}}  b', svc)).toBe('aabc123b');
    expect(renderTemplate('a{{/* a comment }} */}}b', {})).toBe('ab');
    expect(renderTemplate('{{"}}"}}', {})).toBe('}}');
  });

  it('prints values as Go`s %v: maps, lists, nil, floats', () => {
    expect(renderTemplate('{{.Spec.Labels}}', svc)).toBe('map[com.example.tier:front env:prod]');
    expect(renderTemplate('{{.L}} {{.N}} {{.F}} {{.B}}', { L: ['a', 'b'], N: null, F: 1.5, B: true })).toBe('[a b] <nil> 1.5 true');
  });

  it('refuses malformed templates with Go`s messages', () => {
    expect(() => parseTemplate('{{.ID')).toThrow('template: :1: unclosed action');
    expect(() => parseTemplate('a\n{{end}}')).toThrow('template: :2: unexpected {{end}}');
    expect(() => parseTemplate('{{if .A}}x')).toThrow('template: :1: unexpected EOF');
    expect(() => parseTemplate('{{nope .A}}')).toThrow('template: :1: function "nope" not defined');
    expect(() => parseTemplate('{{}}')).toThrow('template: :1: missing value for command');
    expect(() => parseTemplate('{{"abc}}')).toThrow('unclosed action');
    expect(() => parseTemplate('{{.A | }}')).toThrow('missing value for command');
    expect(() => parseTemplate('{{(.A}}')).toThrow('unclosed left paren');
    expect(() => parseTemplate('{{.A)}}')).toThrow('unexpected right paren');
    expect(() => parseTemplate('{{#}}')).toThrow('template: :1: unexpected "#" in command');
    expect(() => parseTemplate('{{$nope}}')).toThrow('template: :1: undefined variable "$nope"');
    expect(() => parseTemplate('{{range $v := .L}}{{end}}{{$v}}')).toThrow('undefined variable "$v"');
    expect(() => parseTemplate('{{/* open')).toThrow('unclosed comment');
  });

  it('bounds nesting, length and argument misuse', () => {
    const deep = '{{if 1}}'.repeat(MAX_TEMPLATE_DEPTH + 2) + '{{end}}'.repeat(MAX_TEMPLATE_DEPTH + 2);
    expect(() => parseTemplate(deep)).toThrow(`nested deeper than ${MAX_TEMPLATE_DEPTH}`);
    const parens = `{{${'('.repeat(MAX_TEMPLATE_DEPTH + 2)}1${')'.repeat(MAX_TEMPLATE_DEPTH + 2)}}}`;
    expect(() => parseTemplate(parens)).toThrow(`nested deeper than ${MAX_TEMPLATE_DEPTH}`);
    expect(() => parseTemplate('x'.repeat(20_000))).toThrow('at most 16384 are read');
    expect(() => renderTemplate('{{.ID 1}}', svc)).toThrow("can't give argument to non-function .ID");
    expect(() => renderTemplate('{{upper 1}}', svc)).toThrow('expected string; got int');
    expect(() => renderTemplate('{{json}}', svc)).toThrow('wrong number of args for json: want 1 got 0');
    expect(() => renderTemplate('{{range .ID}}{{end}}', svc)).toThrow("range can't iterate over abc123");
    expect(() => renderTemplate('{{.A.B}}', { A: null })).toThrow('nil pointer evaluating interface {}.B');
    // Ranges nested over one list multiply: stopped by a step count, not left to run for ever.
    const L = Array.from({ length: 100 }, (_, i) => i);
    expect(() => renderTemplate(`${'{{range $.L}}'.repeat(5)}x${'{{end}}'.repeat(5)}`, { L })).toThrow('ran more than 1000000 steps');
    expect(() => renderTemplate('{{range $.L}}{{$.S}}{{end}}', { L, S: 'y'.repeat(200_000) })).toThrow('output passed 16777216 characters');
  });
});

describe('--format and --filter', () => {
  it('tells table, json and templates apart, turning \\t and \\n into tab and newline', () => {
    expect(formatChoice(undefined)).toEqual({ kind: 'default' });
    expect(formatChoice('table')).toEqual({ kind: 'default' });
    expect(formatChoice('json')).toEqual({ kind: 'json' });
    expect(formatChoice('table {{.ID}}\\t{{.Name}}')).toEqual({ kind: 'table', template: '{{.ID}}\t{{.Name}}' });
    expect(formatChoice('{{.ID}}\\n')).toEqual({ kind: 'raw', template: '{{.ID}}\n' });
    expect(formatChoice('tablet')).toEqual({ kind: 'raw', template: 'tablet' });
  });

  it('a table has a header of docker`s column names and aligned columns', () => {
    const rows = [
      { ID: 'a1', Name: 'web', Mode: 'replicated', Replicas: '1/1', Image: 'nginx', Ports: '' },
      { ID: 'b2', Name: 'a-much-longer-name', Mode: 'global', Replicas: '2/2', Image: 'busybox', Ports: '' },
    ];
    expect(renderList({ kind: 'table', template: '{{.ID}}\t{{.Name | upper}}\t{{.Replicas}}' }, SERVICE_FIELDS, rows)).toBe(
      'ID        NAME                 REPLICAS\n' + 'a1        WEB                  1/1\n' + 'b2        A-MUCH-LONGER-NAME   2/2\n',
    );
    expect(renderList({ kind: 'raw', template: '{{.Name}}' }, SERVICE_FIELDS, rows)).toBe('web\na-much-longer-name\n');
    expect(() => renderList({ kind: 'raw', template: '{{.Nope}}' }, SERVICE_FIELDS, rows)).toThrow(
      `template parsing error: template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type *service.serviceContext`,
    );
  });

  it('tabwrite aligns only tab-terminated cells, per run of lines', () => {
    expect(tabwrite('a\tb\nlonger-than-ten\tc\nx')).toBe('a                 b\nlonger-than-ten   c\nx');
  });

  it('renders inspect templates once per object', () => {
    expect(renderInspect('{{.ID}} {{.Spec.Name}}', [svc, { ...svc, ID: 'def' }])).toBe('abc123 web\ndef web\n');
  });

  it('reads --filter as docker`s ParseFlag: key lower-cased, values collected, no = refused', () => {
    const f = filtersFromFlags(['Name=web', 'name=db', ' label = a=b ']);
    expect([...f.entries()].map(([k, v]) => [k, [...v]])).toEqual([
      ['name', ['web', 'db']],
      ['label', ['a=b']],
    ]);
    expect(() => filtersFromFlags(['name'])).toThrow('bad format of filter (expected name=value)');
  });

  it('prints times as Go`s time.Time String', () => {
    expect(goTimeString(Date.UTC(2026, 11, 7, 21, 38, 47, 120))).toBe('2026-12-07 21:38:47.12 +0000 UTC');
    expect(goTimeString(Date.UTC(2026, 11, 7, 21, 38, 47, 0))).toBe('2026-12-07 21:38:47 +0000 UTC');
  });
});
