// The container options through the Engine API: the body `docker service
// create --sysctl ... --ulimit ... --dns ... --host ... --group ...
// --oom-score-adj ... --generic-resource ... --health-start-interval ...`
// sends becomes our spec, and `docker service inspect` shows them under
// Docker's field names; a node's generic resources appear in its description.
import { describe, expect, it } from 'vitest';
import { parseCreateArgv } from '../../../cli/service.js';
import { type Node, NodeAvailability, NodeRole, NodeState } from '../../../proto/gen/objects.js';
import { toDockerNode } from '../../../spec/docker/node.js';
import { serviceSpecFromDocker, serviceSpecToDocker } from '../../../spec/docker/service.js';
import { plainSpec, validateServiceSpec } from '../../../spec/index.js';

/** What docker CLI 27 sends for those flags (the rest of its body left out). */
const BODY = {
  Name: 'opts',
  TaskTemplate: {
    ContainerSpec: {
      Image: 'busybox',
      Groups: ['video', '1001'],
      Healthcheck: { Test: ['CMD-SHELL', 'true'], StartPeriod: 30e9, StartInterval: 2e9 },
      Hosts: ['10.0.0.5 db.local'],
      DNSConfig: { Nameservers: ['192.0.2.53'], Search: ['example.com'], Options: ['ndots:2'] },
      Sysctls: { 'net.core.somaxconn': '1024' },
      Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
      OomScoreAdj: -500,
      Init: false,
    },
    Resources: { Limits: {}, Reservations: { GenericResources: [{ DiscreteResourceSpec: { Kind: 'gpu', Value: 2 } }] } },
  },
  Mode: { Replicated: { Replicas: 1 } },
};

describe('the Engine API', () => {
  it("reads Docker's fields into ours", () => {
    const s = serviceSpecFromDocker(BODY);
    const c = s.task.container;
    expect(c.groups).toEqual(['video', '1001']);
    expect(c.healthcheck?.startIntervalMs).toBe(2000);
    expect(c.hosts).toEqual(['10.0.0.5 db.local']);
    expect(c.dnsConfig).toEqual({ nameservers: ['192.0.2.53'], search: ['example.com'], options: ['ndots:2'] });
    expect(c.sysctls).toEqual({ 'net.core.somaxconn': '1024' });
    expect(c.ulimits).toEqual([{ name: 'nofile', soft: 1024, hard: 2048 }]);
    expect(c.oomScoreAdj).toBe(-500);
    expect(s.task.resources?.reservations?.generic).toEqual([{ kind: 'gpu', value: 2 }]);
    expect(() => validateServiceSpec(s)).not.toThrow();
  });

  it("shows them under Docker's names, as sent", () => {
    const d = serviceSpecToDocker(serviceSpecFromDocker(BODY));
    const c = d.TaskTemplate.ContainerSpec;
    expect(c.Groups).toEqual(BODY.TaskTemplate.ContainerSpec.Groups);
    expect(c.Healthcheck?.StartInterval).toBe(2e9);
    expect(c.Hosts).toEqual(BODY.TaskTemplate.ContainerSpec.Hosts);
    expect(c.DNSConfig).toEqual(BODY.TaskTemplate.ContainerSpec.DNSConfig);
    expect(c.Sysctls).toEqual(BODY.TaskTemplate.ContainerSpec.Sysctls);
    expect(c.Ulimits).toEqual(BODY.TaskTemplate.ContainerSpec.Ulimits);
    expect(c.OomScoreAdj).toBe(-500);
    expect(d.TaskTemplate.Resources?.Reservations).toEqual(BODY.TaskTemplate.Resources.Reservations);
  });

  it('refuses a host-wide sysctl, an unknown ulimit and a named generic resource by their Docker paths', () => {
    const at = (path: string[], v: unknown) => {
      const b = structuredClone(BODY) as Record<string, unknown>;
      let o = b;
      for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
      o[path[path.length - 1]!] = v;
      return () => serviceSpecFromDocker(b);
    };
    expect(at(['TaskTemplate', 'ContainerSpec', 'Sysctls'], { 'kernel.hostname': 'x' })).toThrow(
      /^TaskTemplate.ContainerSpec.Sysctls: "kernel.hostname" is not namespaced/,
    );
    expect(at(['TaskTemplate', 'ContainerSpec', 'Ulimits'], [{ Name: 'files', Soft: 1, Hard: 1 }])).toThrow(
      /^TaskTemplate.ContainerSpec.Ulimits\[0\].Name must be one of core/,
    );
    expect(
      at(['TaskTemplate', 'Resources', 'Reservations'], { GenericResources: [{ NamedResourceSpec: { Kind: 'gpu', Value: 'GPU-1' } }] }),
    ).toThrow(/NamedResourceSpec is not supported by tsswarm yet: named generic resources/);
  });

  it('a spec from our CLI goes through Docker’s form and back unchanged', () => {
    const { spec } = parseCreateArgv([
      '--sysctl',
      'net.ipv4.ip_forward=1',
      '--ulimit',
      'memlock=-1:-1',
      '--dns',
      '192.0.2.53',
      '--dns-option',
      'ndots:1',
      '--dns-search',
      'example.com',
      '--host',
      'db:10.0.0.5',
      '--group',
      'audio',
      '--oom-score-adj',
      '300',
      '--generic-resource',
      'gpu=1',
      '--health-start-interval',
      '1s',
      'busybox',
    ]);
    const s = validateServiceSpec({ ...spec, name: 'svc' }).spec;
    const wire = JSON.parse(JSON.stringify(serviceSpecToDocker(s))) as unknown;
    expect(serviceSpecFromDocker(wire)).toEqual(plainSpec(s));
  });
});

describe('a node in the Engine API', () => {
  it('shows its generic resources as DiscreteResourceSpec', () => {
    const n = {
      meta: { id: 'n1', version: 1, createdAt: 0, updatedAt: 0 },
      spec: { name: '', role: NodeRole.WORKER, availability: NodeAvailability.ACTIVE, labels: {} },
      role: NodeRole.WORKER,
      status: { state: NodeState.READY, message: '', addr: '10.0.0.1:4242' },
      description: {
        hostname: 'h1',
        platform: { os: 'linux', architecture: 'x86_64' },
        resources: { nanoCpus: 2e9, memoryBytes: 1 << 30, pids: 0, generic: [{ kind: 'gpu', value: 4 }] },
        engineVersion: '',
      },
    } as unknown as Node;
    const d = toDockerNode(n, { TrustRoot: '', CertIssuerSubject: '', CertIssuerPublicKey: '' }) as {
      Description: { Resources: unknown };
    };
    expect(d.Description.Resources).toEqual({
      NanoCPUs: 2e9,
      MemoryBytes: 1 << 30,
      GenericResources: [{ DiscreteResourceSpec: { Kind: 'gpu', Value: 4 } }],
    });
  });
});
