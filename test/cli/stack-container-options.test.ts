// A stack's container options, as docker stack deploy reads them (sysctls,
// ulimits, dns, dns_search, extra_hosts, generic_resources, start_interval, tty),
// reach the service spec tsswarm stores; a host-wide sysctl is refused.
import { describe, expect, it } from 'vitest';
import { stackServiceSpecs } from '../../cli/stack.js';
import { validateServiceSpec } from '../../spec/index.js';
import { stack } from '../spec/compose/helpers.js';

const COMPOSE = `
version: "3.13"
services:
  app:
    image: busybox
    sysctls:
      net.core.somaxconn: 1024
    ulimits:
      nproc: 64
      nofile: {soft: 1024, hard: 2048}
    dns: [192.0.2.53]
    dns_search: example.com
    extra_hosts:
      - "db.local:10.0.0.5"
    healthcheck:
      test: ["CMD", "true"]
      start_period: 30s
      start_interval: 2s
    deploy:
      resources:
        reservations:
          generic_resources:
            - discrete_resource_spec: {kind: gpu, value: 2}
`;

describe('stack deploy with container options', () => {
  it('carries them into the service spec, which the Control API accepts', () => {
    const [spec] = stackServiceSpecs(stack(COMPOSE));
    const c = spec!.task.container;
    expect(c.sysctls).toEqual({ 'net.core.somaxconn': '1024' });
    expect(c.ulimits).toEqual([
      { name: 'nofile', soft: 1024, hard: 2048 },
      { name: 'nproc', soft: 64, hard: 64 },
    ]);
    expect(c.dnsConfig).toEqual({ nameservers: ['192.0.2.53'], search: ['example.com'], options: [] });
    expect(c.hosts).toEqual(['10.0.0.5 db.local']);
    expect(c.healthcheck?.startIntervalMs).toBe(2000);
    expect(spec!.task.resources?.reservations?.generic).toEqual([{ kind: 'gpu', value: 2 }]);
    expect(() => validateServiceSpec(spec!)).not.toThrow();
  });

  it('refuses a sysctl that is not namespaced, naming the service and the field', () => {
    const text = 'services:\n  app:\n    image: busybox\n    sysctls: ["vm.swappiness=1"]\n';
    expect(() => stackServiceSpecs(stack(text))).toThrow(
      /^service demo_app: TaskTemplate.ContainerSpec.Sysctls: "vm.swappiness" is not namespaced/,
    );
  });

  it('tty: true gives the service a pseudo-terminal, as docker stack deploy does; tty: false none', () => {
    const tty = (v: string) => stackServiceSpecs(stack(`services:\n  app:\n    image: busybox\n    tty: ${v}\n`))[0]!.task.container.tty;
    expect(tty('true')).toBe(true);
    expect(tty('false')).toBe(false);
  });
});
