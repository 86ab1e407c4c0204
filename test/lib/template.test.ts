// Docker's service templates: the strict parser (only `{{.A.B}}` placeholders
// of the supported names), expansion per task, hostile inputs, and the refusal
// at service create/update naming the flag.
import { describe, expect, it } from 'vitest';
import { expandTemplate, parseTemplate, sampleTemplateContext, TEMPLATE_PLACEHOLDERS, type TemplateContext } from '../../lib/template.js';
import { validateServiceSpec } from '../../spec/index.js';
import { ContainerSpec, Mount, MountType, ServiceSpec, TaskSpec } from '../../proto/gen/objects.js';
import { errorOf } from '../errors.js';

const ctx: TemplateContext = {
  service: { id: 'svc0000000000000000000001', name: 'web' },
  node: { id: 'node000000000000000000001', hostname: 'host-a', os: 'linux', architecture: 'x86_64' },
  task: { id: 'task000000000000000000001', name: 'web.3.task000000000000000000001', slot: '3' },
};

describe('template expansion', () => {
  it('expands every supported placeholder, with or without spaces inside the braces', () => {
    const all =
      '{{.Service.ID}}|{{.Service.Name}}|{{.Node.ID}}|{{ .Node.Hostname }}|{{.Node.Platform.OS}}|{{  .Node.Platform.Architecture}}|{{.Task.ID}}|{{.Task.Name}}|{{.Task.Slot }}';
    expect(expandTemplate('f', all, ctx)).toBe(
      'svc0000000000000000000001|web|node000000000000000000001|host-a|linux|x86_64|task000000000000000000001|web.3.task000000000000000000001|3',
    );
    expect(TEMPLATE_PLACEHOLDERS).toHaveLength(9);
  });

  it('keeps the text around placeholders and a value without any as it is', () => {
    expect(expandTemplate('f', '{{.Service.Name}}-{{.Task.Slot}}.local', ctx)).toBe('web-3.local');
    expect(expandTemplate('f', 'plain }} text', ctx)).toBe('plain }} text');
    expect(parseTemplate('f', 'a{{.Task.Slot}}b')).toEqual([{ text: 'a' }, { field: '.Task.Slot' }, { text: 'b' }]);
  });

  it('does not expand a value a placeholder produced (no second pass)', () => {
    const tricky: TemplateContext = { ...ctx, node: { ...ctx.node, hostname: '{{.Task.ID}}' } };
    expect(expandTemplate('f', '{{.Node.Hostname}}', tricky)).toBe('{{.Task.ID}}');
  });

  it.each([
    ['{{.Node.Hostname}}{{', /never closed/],
    ['{{', /never closed/],
    ['{{ call .X }}', /not a supported placeholder/],
    ['{{.Node}}', /not a supported placeholder/],
    ['{{.node.hostname}}', /not a supported placeholder/],
    ['{{.Task.Slot | printf "%03d"}}', /not a supported placeholder/],
    ['{{printf "%s" .Task.ID}}', /not a supported placeholder/],
    ['{{- .Task.Slot -}}', /trim marker/],
    ['{{index .Service.Labels "zone"}}', /service's labels/],
    ['{{.Service.Labels}}', /service's labels/],
    ['{{ {{.Task.ID}} }}', /nests/],
    ['{{/* comment */}}', /not a supported placeholder/],
    ['{{}}', /not a supported placeholder/],
  ])('refuses %j, naming the field and listing the supported placeholders', (value, why) => {
    const e = errorOf(() => parseTemplate('spec.task.container.hostname (--hostname)', value));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/^spec\.task\.container\.hostname \(--hostname\): /);
    expect(e.message).toMatch(why);
    expect(e.message).toContain('{{.Node.Hostname}}, {{.Node.Platform.OS}}');
  });

  it('refuses an oversized template at once and parses many placeholders in linear time', () => {
    expect(errorOf(() => parseTemplate('f', '{{'.repeat(1 << 20))).message).toMatch(/longer than 32768/);
    const many = '{{.Task.Slot}}'.repeat(2000);
    const t = performance.now();
    expect(expandTemplate('f', many, ctx)).toBe('3'.repeat(2000));
    // An unclosed "{{" after many openers is found in one scan, not one per opener.
    expect(errorOf(() => parseTemplate('f', `${'{{.Task.ID}}'.repeat(2000)}{{`)).message).toMatch(/never closed/);
    expect(performance.now() - t).toBeLessThan(200);
  });
});

describe('templates in a service spec', () => {
  const spec = (c: Partial<ContainerSpec>): ServiceSpec =>
    ServiceSpec.create({ name: 'web', task: TaskSpec.create({ container: ContainerSpec.create({ image: 'busybox', ...c }) }) });

  it('accepts supported placeholders in --hostname, --env and a mount source', () => {
    const { spec: s } = validateServiceSpec(
      spec({
        hostname: '{{.Service.Name}}-{{.Task.Slot}}',
        env: ['NODE={{.Node.Hostname}}', 'PLAIN=1'],
        mounts: [Mount.create({ type: MountType.VOLUME, source: 'data-{{.Task.Slot}}', target: '/data' })],
      }),
    );
    expect(s.task.container.hostname).toBe('{{.Service.Name}}-{{.Task.Slot}}');
  });

  it('refuses an unsupported placeholder in each, naming the field and flag', () => {
    expect(errorOf(() => validateServiceSpec(spec({ hostname: '{{ call .X }}' }))).message).toMatch(
      /^spec\.task\.container\.hostname \(--hostname\): .*not a supported placeholder/,
    );
    expect(errorOf(() => validateServiceSpec(spec({ env: ['A=1', 'B={{.Secret}}'] }))).message).toMatch(
      /^spec\.task\.container\.env\[1\] \(--env\): /,
    );
    const m = Mount.create({ type: MountType.BIND, source: '/srv/{{.Task.Slot', target: '/data' });
    expect(errorOf(() => validateServiceSpec(spec({ mounts: [m] }))).message).toMatch(
      /^spec\.task\.container\.mounts\[0\]\.source \(--mount source=\): .*never closed/,
    );
  });

  it('refuses a hostname template whose result cannot be a hostname', () => {
    const e = errorOf(() => validateServiceSpec(spec({ hostname: 'bad_{{.Task.Slot}}' })));
    expect(e.message).toMatch(/^spec\.task\.container\.hostname .*not a valid hostname/);
  });

  it('checks results with typical values: 25-character ids, slot 1', () => {
    expect(expandTemplate('f', '{{.Task.Name}}', sampleTemplateContext('web'))).toBe(`web.1.${'x'.repeat(25)}`);
  });
});
