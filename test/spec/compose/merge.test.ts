// Several -c files merge as docker merges them: services by name, lists
// appended, maps merged, keyed lists by their key, command replaced, and
// top-level entries replaced whole.
import { describe, expect, it } from 'vitest';
import { stack } from './helpers.js';

const base = `services:
  web:
    image: nginx
    command: [a, b]
    cap_add: [NET_ADMIN]
    dns: [1.1.1.1]
    environment: {A: "1", B: "2"}
    labels: {x: "1"}
    ports: ["9000", "9001", "8080:80"]
    volumes: ["data:/data", "/h:/h"]
    secrets: [pw]
    networks: {front: {aliases: [www]}}
    logging: {driver: json-file, options: {max-size: 1m, max-file: "3"}}
    read_only: true
    deploy:
      replicas: 2
      placement: {constraints: [node.role==worker]}
      labels: {s: "1"}
networks:
  front: {attachable: true, labels: {old: "1"}}
volumes: {data: {}}
secrets: {pw: {file: pw}}
`;
const override = `services:
  web:
    image: nginx:1.27
    command: c
    cap_add: [SYS_TIME]
    dns: [8.8.8.8]
    environment: {B: "over", C: "3"}
    ports: ["9002"]
    volumes: ["/other:/data:ro"]
    secrets: [{source: pw, target: renamed}]
    networks: {front: {}}
    logging: {options: {max-size: 5m}}
    read_only: false
    deploy:
      replicas: 0
      placement: {constraints: [node.labels.zone==a]}
  db:
    image: postgres
networks:
  front: {internal: true}
`;

describe('merging -c files', () => {
  const s = stack([base, override], {}, { '/srv/app/pw': 'x' });
  const web = s.services.find((x) => x.Name === 'demo_web');
  const cs = web?.TaskTemplate.ContainerSpec;

  it('adds services and overrides non-zero scalars', () => {
    expect(s.services.map((x) => x.Name)).toEqual(['demo_db', 'demo_web']);
    expect(cs?.Image).toBe('nginx:1.27');
    expect(web?.Labels['com.docker.stack.image']).toBe('nginx:1.27');
    // false is Go's zero value: it does not override; replicas is a pointer: 0 does.
    expect(cs?.ReadOnly).toBe(true);
    expect(web?.Mode).toEqual({ Replicated: { Replicas: 0 } });
  });

  it('appends plain lists, replaces command, merges maps', () => {
    expect(cs?.Args).toEqual(['c']);
    expect(cs?.CapabilityAdd).toEqual(['CAP_NET_ADMIN', 'CAP_SYS_TIME']);
    expect(cs?.DNSConfig).toEqual({ Nameservers: ['1.1.1.1', '8.8.8.8'] });
    expect(cs?.Env).toEqual(['A=1', 'B=over', 'C=3']);
    expect(web?.TaskTemplate.Placement.Constraints).toEqual(['node.role==worker', 'node.labels.zone==a']);
    expect(web?.Labels.s).toBe('1');
    expect(web?.TaskTemplate.LogDriver).toEqual({ Name: 'json-file', Options: { 'max-size': '5m', 'max-file': '3' } });
  });

  it('keys ports by published port, so unpublished ports collide', () => {
    expect(web?.EndpointSpec.Ports).toEqual([
      { Protocol: 'tcp', TargetPort: 9002, PublishMode: 'ingress' },
      { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
    ]);
  });

  it('keys volumes by target and secrets by source', () => {
    expect(cs?.Mounts).toEqual([
      { Type: 'bind', Source: '/other', Target: '/data', ReadOnly: true },
      { Type: 'bind', Source: '/h', Target: '/h' },
    ]);
    expect(cs?.Secrets).toEqual([{ File: { Name: 'renamed', UID: '0', GID: '0', Mode: 292 }, SecretID: '', SecretName: 'demo_pw' }]);
  });

  it('replaces a network attachment’s aliases', () => {
    expect(web?.TaskTemplate.Networks).toEqual([{ Target: 'demo_front', Aliases: ['web'] }]);
  });

  it('replaces top-level entries whole', () => {
    const front = s.networks.find((n) => n.Name === 'demo_front');
    expect([front?.Attachable, front?.Internal, front?.Labels]).toEqual([false, true, { 'com.docker.stack.namespace': 'demo' }]);
  });

  it('a logging driver change replaces the options', () => {
    const t = stack([
      'services: {web: {image: a, logging: {driver: json-file, options: {a: "1"}}}}',
      'services: {web: {logging: {driver: syslog, options: {b: "2"}}}}',
    ]);
    expect(t.services[0]?.TaskTemplate.LogDriver).toEqual({ Name: 'syslog', Options: { b: '2' } });
  });
});
