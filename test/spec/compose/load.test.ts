// The compose loader refuses what docker stack deploy refuses, with docker's
// exact text: YAML shape, versions, spec-only and forbidden keys, schema
// errors (types, formats, enums, required keys, keys added by later versions).
import { describe, expect, it } from 'vitest';
import type { ComposeError } from '../../../spec/compose/index.js';
import { error, stack } from './helpers.js';

const svc = (body: string, version?: string) =>
  `${version === undefined ? '' : `version: ${version}\n`}services:\n  web:\n    image: nginx\n${body
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}\n`;

describe('versions', () => {
  it.each([
    ['absent', 'services: {web: {image: nginx}}'],
    ['"3"', 'version: "3"\nservices: {web: {image: nginx, deploy: {resources: {limits: {pids: 5}}}}}'],
    ['""', 'version: ""\nservices: {web: {image: nginx}}'],
    ['"3.0"', 'version: "3.0"\nservices: {web: {image: nginx}}'],
    ['"3.13"', 'version: "3.13"\nservices: {web: {image: nginx}}'],
  ])('version %s is accepted', (_name, text) => {
    expect(stack(text).services).toHaveLength(1);
  });

  it.each([
    ['version: 3.8\nservices: {}', 'version must be a string'],
    ['version: "2.4"\nservices: {}', 'unsupported Compose file version: 2.4'],
    ['version: "3.14"\nservices: {}', 'unsupported Compose file version: 3.14'],
    ['version: "4"\nservices: {}', 'unsupported Compose file version: 4'],
    ['version: "3.3"\nx-a: 1\nservices: {}', '(root) Additional property x-a is not allowed'],
  ])('%j is refused: %s', (text, message) => {
    expect(error(text)).toBe(message);
  });

  it('files of different versions are refused', () => {
    expect(error(['version: "3.8"\nservices: {}', 'version: "3.9"\nservices: {}'])).toBe(
      'version mismatched between two composefiles : 3.8 and 3.9',
    );
  });
});

describe('YAML', () => {
  it.each([
    ['- a\n- b\n', 'top-level object must be a mapping'],
    ['just a string', 'top-level object must be a mapping'],
    ['', 'top-level object must be a mapping'],
    ['services:\n  web:\n    image: a\n    image: b\n', 'yaml: unmarshal errors:\n  line 4: mapping key "image" already defined at line 3'],
  ])('%j is refused', (text, message) => {
    expect(error(text)).toBe(message);
  });

  it('reads integers as Go does: 0400 is octal, 0b101 binary, 1_000 a thousand', () => {
    const s = stack(
      svc('secrets: [{source: pw, mode: 0400}]\nenvironment: {A: 0b101, B: 1_000, C: 1000000.0, D: 1.5e-7, E: yes}') +
        'secrets: {pw: {file: pw}}\n',
      {},
      { '/srv/app/pw': 'x' },
    );
    const cs = s.services[0]?.TaskTemplate.ContainerSpec;
    expect(cs?.Secrets?.[0]?.File.Mode).toBe(256);
    expect(cs?.Env).toEqual(['A=5', 'B=1000', 'C=1e+06', 'D=1.5e-07', 'E=yes']);
  });

  it('merge keys are shallow: local keys win, then the first alias', () => {
    const s = stack(
      'x-a: &a {image: a, hostname: ha, user: ua}\nx-b: &b {image: b, hostname: hb, working_dir: /b}\nservices:\n  web:\n    <<: [*a, *b]\n    user: mine\n',
    );
    const cs = s.services[0]?.TaskTemplate.ContainerSpec;
    expect([cs?.Image, cs?.Hostname, cs?.User, cs?.Dir]).toEqual(['a:latest', 'ha', 'mine', '/b']);
  });
});

describe('spec-only, forbidden and unknown keys', () => {
  it.each([
    ['foo: 1\nservices: {}', '(root) Additional property foo is not allowed'],
    ['name: x\nservices: {}', '(root) Additional property name is not allowed'],
    ['include: [a.yml]\nservices: {}', '(root) Additional property include is not allowed'],
    [svc('profiles: [debug]'), 'services.web Additional property profiles is not allowed'],
    [svc('platform: linux/amd64'), 'services.web Additional property platform is not allowed'],
    [svc('depends_on: {db: {condition: service_healthy}}'), 'services.web.depends_on must be a list'],
    [svc('ports: [{target: 80, host_ip: 127.0.0.1}]'), 'services.web.ports.0 Additional property host_ip is not allowed'],
    ['services: {}\nconfigs: {c: {content: hi}}', 'configs.c Additional property content is not allowed'],
    [svc('deploy: {x-foo: 1}'), 'services.web.deploy Additional property x-foo is not allowed'],
    [
      'services: {web: {image: a, networks: {n: {x-a: 1}}}}\nnetworks: {n: }',
      'services.web.networks.n Additional property x-a is not allowed',
    ],
    [svc('healthcheck: {x-foo: 1}'), 'services.web.healthcheck Additional property x-foo is not allowed'],
    ['services:\n  "web!": {image: a}', 'services Additional property web! is not allowed'],
  ])('%j: %s', (text, message) => {
    expect(error(text)).toBe(message);
  });

  it('x- keys are allowed at the root and in service, network, volume, secret and config entries', () => {
    const s = stack(
      'x-top: 1\nservices:\n  web: {image: a, x-s: 1, networks: [n], volumes: ["v:/v"], secrets: [s], configs: [c]}\nnetworks: {n: {x-n: 1}}\nvolumes: {v: {x-v: 1}}\nsecrets: {s: {file: f, x-s: 1}}\nconfigs: {c: {file: f, x-c: 1}}\n',
      {},
      { '/srv/app/f': 'data' },
    );
    expect(s.services).toHaveLength(1);
  });

  it('forbidden keys are fatal before interpolation, with docker hints', () => {
    expect(error(svc('cpu_shares: 5\nvolumes_from: [other]\nuser: $5'))).toBe(
      'Compose file contains unsupported options:\n\ncpu_shares: Set resource limits using deploy.resources\n\nvolumes_from: To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option.\n',
    );
  });
});

describe('schema errors', () => {
  it.each([
    [svc('deploy: {replicas: "3"}'), 'services.web.deploy.replicas must be a integer'],
    [svc('healthcheck: {interval: "10"}'), "services.web.healthcheck.interval Does not match format 'duration'"],
    [svc('healthcheck: {interval: 10}'), 'services.web.healthcheck.interval must be a string'],
    [svc('stop_grace_period: 1d'), "services.web.stop_grace_period Does not match format 'duration'"],
    [svc('ports: ["abc"]'), "services.web.ports.0 Does not match format 'ports'"],
    [svc('ulimits: {nofile: {soft: 1}}'), 'services.web.ulimits.nofile hard is required'],
    [
      svc('deploy: {update_config: {order: sideways}}'),
      'services.web.deploy.update_config.order services.web.deploy.update_config.order must be one of the following: "start-first", "stop-first"',
    ],
    [svc('environment: {B: true}'), 'services.web.environment.B must be a string, number or null'],
    [svc('labels: {B: [1]}'), 'services.web.labels.B must be a string, number or null'],
    [svc('deploy: {resources: {limits: {cpus: 0.5}}}'), 'services.web.deploy.resources.limits.cpus must be a string'],
    [svc('deploy: {resources: {limits: {memory: 512}}}'), 'services.web.deploy.resources.limits.memory must be a string'],
    [svc('read_only: "yes"'), 'services.web.read_only must be a boolean'],
    [svc('cap_add: [A, A]'), 'services.web.cap_add array items[0,1] must be unique'],
    [svc('deploy: 5'), 'services.web.deploy must be a mapping or null'],
    [svc('environment: 5'), 'services.web.environment must be a mapping'],
    [svc('command: 5'), 'services.web.command must be a string'],
    [svc('ports: ["70000:80"]'), "services.web.ports.0 Does not match format 'ports'"],
    [svc('ports: [{target: 80, x-a: 1}]'), 'services.web.ports.0 Additional property x-a is not allowed'],
    [svc('volumes: [""]'), "decoding failed due to the following error(s):\n\nerror decoding 'Volumes[0]': invalid empty volume spec"],
    [
      svc('deploy: {resources: {limits: {memory: 1.5Gi}}}'),
      "decoding failed due to the following error(s):\n\nerror decoding 'Deploy.Resources.Limits.memory': invalid suffix: 'gi'",
    ],
    ['services: {web: [a]}', 'services.web must be a mapping'],
    ['services: [web]', 'services must be a mapping'],
  ])('%j: %s', (text, message) => {
    expect(error(text)).toBe(message);
  });

  it.each([
    ['3.8', 'deploy: {resources: {limits: {pids: 100}}}', 'services.web.deploy.resources.limits Additional property pids is not allowed'],
    ['3.0', 'secrets: [a]', 'services.web Additional property secrets is not allowed'],
    ['3.1', 'ports: [{target: 80}]', 'services.web.ports.0 must be a string or number'],
    ['3.6', 'x-a: 1', 'services.web Additional property x-a is not allowed'],
    ['3.2', 'configs: [a]', 'services.web Additional property configs is not allowed'],
    ['3.3', 'deploy: {update_config: {order: start-first}}', 'services.web.deploy.update_config Additional property order is not allowed'],
    ['3.4', 'isolation: default', 'services.web Additional property isolation is not allowed'],
    ['3.5', 'volumes: [{type: tmpfs, target: /t, tmpfs: {size: 1}}]', 'services.web.volumes.0 Additional property tmpfs is not allowed'],
    ['3.6', 'init: true', 'services.web Additional property init is not allowed'],
    [
      '3.7',
      'deploy: {placement: {max_replicas_per_node: 1}}',
      'services.web.deploy.placement Additional property max_replicas_per_node is not allowed',
    ],
    ['3.11', 'healthcheck: {start_interval: 1s}', 'services.web.healthcheck Additional property start_interval is not allowed'],
    ['3.12', 'networks: {n: {driver_opts: {a: b}}}', 'services.web.networks.n Additional property driver_opts is not allowed'],
  ])('under %s, %j is refused', (version, body, message) => {
    expect(error(svc(body, `"${version}"`))).toBe(message);
  });
});

describe('where a schema error is', () => {
  function where(texts: string | string[]): string | undefined {
    try {
      stack(texts);
    } catch (err) {
      return (err as ComposeError).where;
    }
    throw new Error('expected the compose files to be refused');
  }

  it('names the file and the line of the key at fault, the message staying docker text', () => {
    const text = 'version: "3.8"\nservices:\n  web:\n    image: nginx\n    imagee: nginx\n';
    expect(error(text)).toBe('services.web Additional property imagee is not allowed');
    expect(where(text)).toBe('compose0.yml, line 5');
    expect(where('services:\n  web:\n    image: nginx\n    deploy:\n      replicas: many\n')).toBe('compose0.yml, line 5');
    expect(where('services:\n  web:\n    image: nginx\n    ports:\n      - 80\n      - {target: x}\n')).toBe('compose0.yml, line 6');
  });

  it('in the second of two files, that file', () => {
    expect(where(['services: {web: {image: a}}\n', 'services:\n  web:\n    labels: 5\n'])).toBe('compose1.yml, line 3');
  });

  it('none for errors that are not about one key', () => {
    expect(where('version: "2.4"\nservices: {}')).toBeUndefined();
  });
});
