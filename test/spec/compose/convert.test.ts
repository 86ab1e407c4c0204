// The research note's example stacks (shared/research/compose.md §8) turned
// into the exact JSON bodies docker stack deploy sends for them.
import { describe, expect, it } from 'vitest';
import { error, service, stack } from './helpers.js';

const NS = { 'com.docker.stack.namespace': 'demo' };
const PRIV = { CredentialSpec: null, SELinuxContext: null, NoNewPrivileges: false };
const web = (body: string) => `services:\n  web:\n    image: nginx\n${body.replace(/^/gm, '    ')}\n`;

describe('the minimal stack', () => {
  it('one service on the default network', () => {
    const s = stack('services: {web: {image: nginx}}');
    expect(s.networks).toEqual([
      {
        Name: 'demo_default',
        Driver: 'overlay',
        Scope: '',
        IPAM: null,
        Internal: false,
        Attachable: false,
        Ingress: false,
        ConfigOnly: false,
        ConfigFrom: null,
        Options: null,
        Labels: NS,
      },
    ]);
    expect(s.services).toEqual([
      {
        Name: 'demo_web',
        Labels: { ...NS, 'com.docker.stack.image': 'nginx' },
        TaskTemplate: {
          ContainerSpec: { Image: 'nginx:latest', Labels: NS, Privileges: PRIV },
          Resources: {},
          Placement: {},
          Networks: [{ Target: 'demo_default', Aliases: ['web'] }],
          ForceUpdate: 0,
        },
        Mode: { Replicated: {} },
        EndpointSpec: {},
      },
    ]);
    expect(s.warnings).toEqual([]);
  });
});

describe('the api-note stack service', () => {
  it('replicas, update_config, placement, limits, a config and two networks', () => {
    const s = stack(
      `services:
  web:
    image: nginx:alpine
    networks: [front, back]
    configs: [{source: site, target: /etc/nginx/conf.d/site.conf}]
    deploy:
      replicas: 2
      update_config: {order: start-first}
      placement: {constraints: [node.role==worker]}
      resources: {limits: {memory: 256M}}
networks: {front: {}, back: {}}
configs:
  site: {file: site.conf}
`,
      {},
      { '/srv/app/site.conf': 'server {}' },
    );
    expect(s.configs).toEqual([{ Name: 'demo_site', Labels: NS, Data: Buffer.from('server {}').toString('base64') }]);
    expect(s.networks.map((n) => n.Name)).toEqual(['demo_back', 'demo_front']);
    expect(s.services[0]).toEqual({
      Name: 'demo_web',
      Labels: { 'com.docker.stack.image': 'nginx:alpine', 'com.docker.stack.namespace': 'demo' },
      TaskTemplate: {
        ContainerSpec: {
          Image: 'nginx:alpine',
          Labels: NS,
          Privileges: PRIV,
          Configs: [
            { File: { Name: '/etc/nginx/conf.d/site.conf', UID: '0', GID: '0', Mode: 292 }, ConfigID: '', ConfigName: 'demo_site' },
          ],
        },
        Resources: { Limits: { MemoryBytes: 268435456 } },
        Placement: { Constraints: ['node.role==worker'] },
        Networks: [
          { Target: 'demo_back', Aliases: ['web'] },
          { Target: 'demo_front', Aliases: ['web'] },
        ],
        ForceUpdate: 0,
      },
      Mode: { Replicated: { Replicas: 2 } },
      UpdateConfig: { Parallelism: 1, MaxFailureRatio: 0, Order: 'start-first' },
      EndpointSpec: {},
    });
  });
});

describe('ports', () => {
  it('short forms become ingress entries, one per port of a range, sorted by published port', () => {
    const s = stack(web('ports: ["8080:80", "443:443/udp", 9000, "7000-7001:8000-8001", "127.0.0.1:8082:82"]'));
    expect(s.services[0]?.EndpointSpec.Ports).toEqual([
      { Protocol: 'tcp', TargetPort: 9000, PublishMode: 'ingress' },
      { Protocol: 'udp', TargetPort: 443, PublishedPort: 443, PublishMode: 'ingress' },
      { Protocol: 'tcp', TargetPort: 8000, PublishedPort: 7000, PublishMode: 'ingress' },
      { Protocol: 'tcp', TargetPort: 8001, PublishedPort: 7001, PublishMode: 'ingress' },
      { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
      { Protocol: 'tcp', TargetPort: 82, PublishedPort: 8082, PublishMode: 'ingress' },
    ]);
    expect(s.warnings).toEqual(["ignoring IP-address (127.0.0.1:8082:82/tcp) service will listen on '0.0.0.0'"]);
  });

  it('long forms are copied as written', () => {
    expect(service(web('ports: [{target: 80}, {target: 81, published: 8081, mode: host, protocol: udp}]')).EndpointSpec).toEqual({
      Ports: [{ TargetPort: 80 }, { Protocol: 'udp', TargetPort: 81, PublishedPort: 8081, PublishMode: 'host' }],
    });
  });

  it('endpoint_mode is lower-cased', () => {
    expect(service(web('deploy: {endpoint_mode: DNSRR}')).EndpointSpec).toEqual({ Mode: 'dnsrr' });
  });
});

describe('volumes', () => {
  const files = `volumes:\n  data: {driver: local, driver_opts: {type: nfs}, labels: [a=b]}\n  ext: {external: true, name: real}\n  plain:\n`;
  it('named, bind, anonymous, tmpfs, external', () => {
    const s = service(
      web(
        'volumes: ["data:/data", "./rel:/rel:ro", "/host:/h:rw,z", "/anon", "~/x:/x:rslave", "ext:/e:nocopy", "plain:/p", {type: tmpfs, target: /t, tmpfs: {size: 1000}}]',
      ) + files,
      { HOME: '/home/alice' },
    );
    expect(s.TaskTemplate.ContainerSpec.Mounts).toEqual([
      {
        Type: 'volume',
        Source: 'demo_data',
        Target: '/data',
        VolumeOptions: { Labels: { a: 'b', ...NS }, DriverConfig: { Name: 'local', Options: { type: 'nfs' } } },
      },
      { Type: 'bind', Source: '/srv/app/rel', Target: '/rel', ReadOnly: true },
      { Type: 'bind', Source: '/host', Target: '/h' },
      { Type: 'volume', Target: '/anon' },
      { Type: 'bind', Source: '/home/alice/x', Target: '/x', BindOptions: { Propagation: 'rslave' } },
      { Type: 'volume', Source: 'real', Target: '/e', VolumeOptions: { NoCopy: true } },
      { Type: 'volume', Source: 'demo_plain', Target: '/p', VolumeOptions: { Labels: NS } },
      { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1000 } },
    ]);
  });

  it.each([
    [web('volumes: ["nope:/x"]'), 'undefined volume "nope"'],
    [
      web('volumes: ["/a:/b:/c:ro"]'),
      "decoding failed due to the following error(s):\n\nerror decoding 'Volumes[0]': invalid spec: /a:/b:/c:ro: too many colons",
    ],
    [
      `${web('volumes: ["v:/v"]')}volumes: {v: {external: true, driver: x}}\n`,
      'conflicting parameters "external" and "driver" specified for volume "v"',
    ],
  ])('%j: %s', (text, message) => {
    expect(error(text)).toBe(message);
  });
});

describe('secrets and configs', () => {
  const files = { '/srv/app/pw.txt': 'hunter2', '/srv/app/tpl': 'x={{.Service.Name}}' };
  it('refs get docker defaults; external names are used as they are; configs may template', () => {
    const s = stack(
      `${web('secrets: [pw, {source: pw, target: other, uid: "1000", mode: 0400}, ext]\nconfigs: [tpl]')}secrets:
  pw: {file: pw.txt, labels: {a: b}}
  ext: {external: true, name: real}
configs:
  tpl: {file: ./tpl, name: custom_tpl, template_driver: golang}
`,
      {},
      files,
    );
    expect(s.secrets).toEqual([{ Name: 'demo_pw', Labels: { a: 'b', ...NS }, Data: Buffer.from('hunter2').toString('base64') }]);
    expect(s.configs).toEqual([
      { Name: 'custom_tpl', Labels: NS, Data: Buffer.from('x={{.Service.Name}}').toString('base64'), Templating: { Name: 'golang' } },
    ]);
    const cs = s.services[0]?.TaskTemplate.ContainerSpec;
    expect(cs?.Secrets).toEqual([
      { File: { Name: 'pw', UID: '0', GID: '0', Mode: 292 }, SecretID: '', SecretName: 'demo_pw' },
      { File: { Name: 'other', UID: '1000', GID: '0', Mode: 256 }, SecretID: '', SecretName: 'demo_pw' },
      { File: { Name: 'ext', UID: '0', GID: '0', Mode: 292 }, SecretID: '', SecretName: 'real' },
    ]);
    expect(cs?.Configs).toEqual([{ File: { Name: 'tpl', UID: '0', GID: '0', Mode: 292 }, ConfigID: '', ConfigName: 'custom_tpl' }]);
  });

  it.each([
    [web('secrets: [nope]'), 'undefined secret "nope"'],
    [`${web('secrets: [pw, {source: pw, target: pw}]')}secrets: {pw: {file: pw.txt}}\n`, 'duplicate secret target for demo_pw not allowed'],
    [`services: {}\nsecrets: {pw: {file: missing}}\n`, 'open /srv/app/missing: no such file or directory'],
  ])('%j: %s', (text, message) => {
    expect(error(text, {}, files)).toBe(message);
  });

  it('reads secret files relative to the working directory, bounded by the Swarm limit', async () => {
    const { fakeFiles } = await import('./helpers.js');
    const { loadStack, MAX_OBJECT_FILE_BYTES } = await import('../../../spec/compose/index.js');
    const f = fakeFiles({ '/srv/other/pw': 'x' });
    loadStack([{ name: 'c.yml', text: 'services: {}\nsecrets: {pw: {file: ../other/pw}}' }], 'demo', {
      env: {},
      workingDir: '/srv/app',
      readFile: f.readFile,
    });
    expect(f.reads).toEqual([{ path: '/srv/other/pw', maxBytes: MAX_OBJECT_FILE_BYTES }]);
    expect(MAX_OBJECT_FILE_BYTES).toBe(500 * 1024 - 1);
  });
});

describe('modes', () => {
  it.each([
    ['deploy: {mode: replicated-job, replicas: 5}', { ReplicatedJob: { MaxConcurrent: 5, TotalCompletions: 5 } }],
    ['deploy: {mode: global-job, endpoint_mode: dnsrr}', { GlobalJob: {} }],
    ['deploy: {mode: global}', { Global: {} }],
    ['deploy: {replicas: 0}', { Replicated: { Replicas: 0 } }],
  ])('%s', (body, mode) => {
    expect(service(web(body)).Mode).toEqual(mode);
  });

  it.each([
    ['deploy: {mode: global, replicas: 2}', 'replicas can only be used with replicated or replicated-job mode'],
    ['deploy: {mode: daemonset}', 'Unknown mode: daemonset'],
  ])('%s: %s', (body, message) => {
    expect(error(web(body))).toBe(message);
  });
});

describe('healthcheck and restart', () => {
  it.each([
    [
      'healthcheck: {test: "curl -f x", interval: 1m30s, retries: 3}',
      { Test: ['CMD-SHELL', 'curl -f x'], Interval: 90000000000, Retries: 3 },
    ],
    ['healthcheck: {test: [CMD, "true"], start_period: 5s}', { Test: ['CMD', 'true'], StartPeriod: 5000000000 }],
    ['healthcheck: {disable: true}', { Test: ['NONE'] }],
  ])('%s', (body, hc) => {
    expect(service(web(body)).TaskTemplate.ContainerSpec.Healthcheck).toEqual(hc);
  });

  it('test and disable together are refused', () => {
    expect(error(web('healthcheck: {test: [CMD, x], disable: true}'))).toBe("test and disable can't be set at the same time");
  });

  it.each([
    ['"on-failure:4"', { Condition: 'on-failure', MaxAttempts: 4 }],
    ['always', { Condition: 'any' }],
    ['unless-stopped', { Condition: 'any' }],
    ['"no"', undefined],
  ])('restart %s', (value, policy) => {
    expect(service(web(`restart: ${value}`)).TaskTemplate.RestartPolicy).toEqual(policy);
  });

  it('restart_policy wins over restart, passed through', () => {
    expect(
      service(web('restart: always\ndeploy: {restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}}'))
        .TaskTemplate.RestartPolicy,
    ).toEqual({
      Condition: 'on-failure',
      Delay: 5000000000,
      MaxAttempts: 3,
      Window: 120000000000,
    });
  });

  it('an unknown restart policy is refused', () => {
    expect(error(web('restart: sometimes'))).toBe('unknown restart policy: sometimes');
  });
});

describe('resources', () => {
  it('cpus, memory, pids and generic resources', () => {
    const s = service(
      web(
        'deploy:\n  resources:\n    limits: {cpus: "0.5", memory: 512M, pids: 100}\n    reservations: {cpus: "1/4", memory: 1.5g, generic_resources: [{discrete_resource_spec: {kind: gpu, value: 2}}]}',
      ),
    );
    expect(s.TaskTemplate.Resources).toEqual({
      Limits: { NanoCPUs: 500000000, MemoryBytes: 536870912, Pids: 100 },
      Reservations: {
        NanoCPUs: 250000000,
        MemoryBytes: 1610612736,
        GenericResources: [{ DiscreteResourceSpec: { Kind: 'gpu', Value: 2 } }],
      },
    });
  });

  it.each([
    [
      'deploy: {resources: {limits: {memory: 1.5Gi}}}',
      "decoding failed due to the following error(s):\n\nerror decoding 'Deploy.Resources.Limits.memory': invalid suffix: 'gi'",
    ],
    ['deploy: {resources: {limits: {cpus: "0.0000000001"}}}', 'value is too precise'],
  ])('%s: %s', (body, message) => {
    expect(error(web(body))).toBe(message);
  });
});

describe('warnings', () => {
  it('ignored keys print docker texts; forbidden ones are fatal; some vanish silently', () => {
    const s = stack(
      web(
        'build: .\nlinks: [db]\nprivileged: true\nrestart: always\ncontainer_name: x\nexpose: [80]\ndepends_on: [db]\ntmpfs: /run\noom_score_adj: 5',
      ),
    );
    expect(s.warnings).toEqual([
      'Ignoring unsupported options: build, links, privileged, restart\n\n',
      "Ignoring deprecated options:\n\ncontainer_name: Setting the container name is not supported.\n\nexpose: Exposing ports is unnecessary - services on the same network can access each other's containers on any port.\n\n",
    ]);
    expect(JSON.stringify(s.services[0])).not.toMatch(/oom|tmpfs|Oom/i);
  });
});

describe('environment', () => {
  it('env_file first, environment over it, the CLI env for empty entries, sorted', () => {
    const s = service(
      web('env_file: app.env\nenvironment: [OVER=env, EMPTY=, NOVAL, HOME]'),
      { HOME: '/home/alice' },
      {
        '/srv/app/app.env': 'FROMFILE=1\n  OVER=file\n#c\n\nBARE\nQ="quoted"\n',
      },
    );
    expect(s.TaskTemplate.ContainerSpec.Env).toEqual(['EMPTY=', 'FROMFILE=1', 'HOME=/home/alice', 'NOVAL', 'OVER=env', 'Q="quoted"']);
  });
});

describe('networks', () => {
  it('aliases, names, attachable, ipam, external', () => {
    const s = stack(`services:
  web:
    image: nginx
    networks: {front: {aliases: [www]}, back: , shared: , host: }
networks:
  front: {attachable: true, driver_opts: {encrypted: ""}, ipam: {config: [{subnet: 10.1.0.0/24}]}, labels: [tier=front]}
  back: {name: custom_back}
  shared: {external: true}
  host: {external: true}
  unused: {}
`);
    expect(s.services[0]?.TaskTemplate.Networks).toEqual([
      { Target: 'custom_back', Aliases: ['web'] },
      { Target: 'demo_front', Aliases: ['www', 'web'] },
      { Target: 'host' },
      { Target: 'shared', Aliases: ['web'] },
    ]);
    expect(s.externalNetworks).toEqual(['host', 'shared']);
    expect(s.networks).toEqual([
      {
        Name: 'custom_back',
        Driver: 'overlay',
        Scope: '',
        IPAM: null,
        Internal: false,
        Attachable: false,
        Ingress: false,
        ConfigOnly: false,
        ConfigFrom: null,
        Options: null,
        Labels: NS,
      },
      {
        Name: 'demo_front',
        Driver: 'overlay',
        Scope: '',
        IPAM: { Driver: '', Options: null, Config: [{ Subnet: '10.1.0.0/24' }] },
        Internal: false,
        Attachable: true,
        Ingress: false,
        ConfigOnly: false,
        ConfigFrom: null,
        Options: { encrypted: '' },
        Labels: { tier: 'front', ...NS },
      },
    ]);
  });

  it("the compose docs' recipe for no network (an external network named none) gives Target none, which the Control API keeps (loopback only)", async () => {
    const s = stack(`${web('networks: {nonet: {}}')}networks: {nonet: {external: true, name: none}}\n`);
    expect(s.services[0]?.TaskTemplate.Networks).toEqual([{ Target: 'none' }]);
    const { serviceSpecFromDocker } = await import('../../../spec/docker/service.js');
    const { validateServiceSpec } = await import('../../../spec/validate.js');
    const { spec } = validateServiceSpec(serviceSpecFromDocker(JSON.parse(JSON.stringify(s.services[0]))));
    expect(spec.task.networks).toEqual([{ target: 'none', aliases: [] }]);
  });

  it('an undeclared network is refused before anything is created', () => {
    expect(error(web('networks: [nope]'))).toBe('service web: undefined network "nope"');
  });

  it('external.name is deprecated with a warning', () => {
    const s = stack(`${web('networks: [n]')}networks: {n: {external: {name: outside}}}\n`);
    expect(s.externalNetworks).toEqual(['outside']);
    expect(s.warnings).toContain('network n: network.external.name is deprecated in favor of network.name');
  });
});

describe('other service keys', () => {
  it('command, entrypoint, caps, sysctls, ulimits, dns, hosts, logging, user, stop settings', () => {
    const cs = service(
      web(`entrypoint: /bin/sh -c
command: 'echo "hi there" $$x'
cap_add: [net_admin, mknod, ALL]
cap_drop: [NET_ADMIN, sys_time]
sysctls: {net.core.somaxconn: 1024}
ulimits: {nproc: 65535, nofile: {soft: 1, hard: 2}}
dns: 1.1.1.1
dns_search: [a.example]
extra_hosts: ["db:10.0.0.2", "v6=[::1]"]
logging: {driver: json-file, options: {max-size: 10m}}
user: "1000:1000"
working_dir: /app
hostname: "{{.Task.Slot}}"
stop_grace_period: 1m30s
stop_signal: SIGUSR1
init: true
tty: true
stdin_open: true
read_only: true`),
    );
    expect(cs.TaskTemplate.LogDriver).toEqual({ Name: 'json-file', Options: { 'max-size': '10m' } });
    expect(cs.TaskTemplate.ContainerSpec).toEqual({
      Image: 'nginx:latest',
      Labels: NS,
      Command: ['/bin/sh', '-c'],
      Args: ['echo', 'hi there', '$x'],
      Hostname: '{{.Task.Slot}}',
      Dir: '/app',
      User: '1000:1000',
      Privileges: PRIV,
      Init: true,
      StopSignal: 'SIGUSR1',
      TTY: true,
      OpenStdin: true,
      ReadOnly: true,
      StopGracePeriod: 90000000000,
      Hosts: ['10.0.0.2 db', '::1 v6'],
      DNSConfig: { Nameservers: ['1.1.1.1'], Search: ['a.example'] },
      Sysctls: { 'net.core.somaxconn': '1024' },
      CapabilityAdd: ['ALL'],
      // ALL trumps the other additions, so NET_ADMIN is no longer "added" and stays dropped (docker's rule).
      CapabilityDrop: ['CAP_NET_ADMIN', 'CAP_SYS_TIME'],
      Ulimits: [
        { Name: 'nofile', Hard: 2, Soft: 1 },
        { Name: 'nproc', Hard: 65535, Soft: 65535 },
      ],
    });
  });

  it('labels go on the container, deploy.labels on the service', () => {
    const s = service(web('labels: [c=1]\ndeploy: {labels: {s: "2"}}'));
    expect(s.Labels).toEqual({ s: '2', ...NS, 'com.docker.stack.image': 'nginx' });
    expect(s.TaskTemplate.ContainerSpec.Labels).toEqual({ c: '1', ...NS });
  });

  it('update and rollback configs get parallelism 1 by default', () => {
    const s = service(
      web(
        'deploy: {update_config: {delay: 1s}, rollback_config: {parallelism: 0, failure_action: pause, monitor: 5s, max_failure_ratio: 0.5}}',
      ),
    );
    expect(s.UpdateConfig).toEqual({ Parallelism: 1, Delay: 1000000000, MaxFailureRatio: 0, Order: '' });
    expect(s.RollbackConfig).toEqual({ Parallelism: 0, FailureAction: 'pause', Monitor: 5000000000, MaxFailureRatio: 0.5, Order: '' });
  });
});

describe('images and names', () => {
  it.each([
    ['busybox', 'busybox:latest'],
    ['nginx:1.27', 'nginx:1.27'],
    ['localhost:5000/app', 'localhost:5000/app:latest'],
    ['docker.io/library/redis', 'redis:latest'],
    [
      'redis@sha256:0123456789012345678901234567890123456789012345678901234567890123',
      'redis@sha256:0123456789012345678901234567890123456789012345678901234567890123',
    ],
  ])('%s is sent as %s, labelled as written', (image, sent) => {
    const s = service(`services: {web: {image: "${image}"}}`);
    expect(s.TaskTemplate.ContainerSpec.Image).toBe(sent);
    expect(s.Labels['com.docker.stack.image']).toBe(image);
  });

  it.each([
    ['services: {web: {hostname: x}}', 'invalid image reference for service web: no image specified'],
    [
      'services: {web: {image: NGINX}}',
      'invalid image reference for service web: invalid reference format: repository name (library/NGINX) must be lowercase',
    ],
  ])('%s: %s', (text, message) => {
    expect(error(text)).toBe(message);
  });

  it.each([
    ['a.b', 'name must be valid as a DNS name component'],
    ['x'.repeat(64), 'name must be 63 characters or fewer'],
    ['  ', 'invalid stack name: "  "'],
  ])('stack %j: %s', (name, message) => {
    expect(error('services: {web: {image: a}}', {}, {}, name)).toBe(message);
  });
});
