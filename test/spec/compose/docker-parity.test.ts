// The loader against the real docker CLI (v28, client only): `docker stack
// config` loads, interpolates, validates and merges without a daemon, so for
// each file both must refuse with the same text or both accept. Errors that
// docker raises only while converting (at deploy time) are tested in
// convert.test.ts instead. Skipped, saying why, where docker is absent.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are compose interpolation, not template literals
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadComposeFiles } from '../../../spec/compose/index.js';

const docker = spawnSync('docker', ['--version'], { encoding: 'utf8' });
const haveDocker = docker.status === 0;
if (!haveDocker) console.log('docker-parity: skipped, no `docker` CLI on PATH');

const svc = (body: string, version?: string) =>
  `${version === undefined ? '' : `version: ${version}\n`}services:\n  web:\n    image: nginx\n${body
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}\n`;

// [file text, environment]
const CASES: [string, Record<string, string>?][] = [
  ['foo: 1\nservices: {}'],
  ['name: x\nservices: {}'],
  [svc('profiles: [debug]')],
  [svc('depends_on: {db: {condition: service_healthy}}')],
  [svc('ports: [{target: 80, host_ip: 127.0.0.1}]')],
  ['services: {}\nconfigs: {c: {content: hi}}'],
  [svc('deploy: {x-foo: 1}')],
  ['services:\n  "web!": {image: a}'],
  [svc('deploy: {replicas: "3"}')],
  [svc('healthcheck: {interval: "10"}')],
  [svc('healthcheck: {interval: 10}')],
  [svc('stop_grace_period: 1d')],
  [svc('ports: ["abc"]')],
  [svc('ports: ["70000:80"]')],
  [svc('ports: ["1-3:4-5"]')],
  [svc('ulimits: {nofile: {soft: 1}}')],
  [svc('deploy: {update_config: {order: sideways}}')],
  [svc('environment: {B: true}')],
  [svc('labels: {B: [1]}')],
  [svc('deploy: {resources: {limits: {cpus: 0.5}}}')],
  [svc('deploy: {resources: {limits: {memory: 512}}}')],
  [svc('deploy: {resources: {limits: {memory: 1.5Gi}}}')],
  [svc('read_only: "yes"')],
  [svc('cap_add: [A, A]')],
  ['services: {web: [a]}'],
  ['services: [web]'],
  [svc('environment: 5')],
  [svc('networks: 5')],
  [svc('command: 5')],
  [svc('volumes: [5]')],
  [svc('volumes: [""]')],
  [svc('volumes: ["/a:/b:/c:ro"]')],
  [svc('healthcheck: {test: [CMD, true]}')],
  [svc('ports: [{target: "80"}]')],
  [svc('deploy: 5')],
  [svc('healthcheck: 5')],
  [svc('ports: [true]')],
  [svc('ulimits: {a: "x"}')],
  ['services: {web: {image: a, networks: {n: 5}}}\nnetworks: {n: }'],
  ['services: {web: {image: a, networks: {n: {x-a: 1}}}}\nnetworks: {n: }'],
  ['services: {}\nnetworks: {n: 5}'],
  [svc('ports: [{target: 80, x-a: 1}]')],
  [svc('volumes: [{type: bind, source: /a, target: /b, x-a: 1}]')],
  [svc('logging: {x-a: 1}')],
  [svc('healthcheck: {interval: 1h30m10s500ms}')],
  [svc('ports: ["127.0.0.1:80:80", "80:80/sctp", "0:81"]')],
  [svc('x-a: 1', '"3.6"')],
  ['version: "3.3"\nx-a: 1\nservices: {}'],
  ['version: "3.4"\nx-a: 1\nservices: {}'],
  [svc('deploy: {resources: {limits: {pids: 100}}}', '"3.8"')],
  [svc('secrets: [a]', '"3.0"')],
  [svc('ports: [{target: 80}]', '"3.1"')],
  [svc('configs: [a]', '"3.2"')],
  [svc('deploy: {update_config: {order: start-first}}', '"3.3"')],
  [svc('isolation: default', '"3.4"')],
  [svc('volumes: [{type: tmpfs, target: /t, tmpfs: {size: 1}}]', '"3.5"')],
  [svc('init: true', '"3.6"')],
  [svc('deploy: {placement: {max_replicas_per_node: 1}}', '"3.7"')],
  [svc('healthcheck: {start_interval: 1s}', '"3.11"')],
  [svc('networks: {n: {driver_opts: {a: b}}}', '"3.12"')],
  ['version: 3.8\nservices: {}'],
  ['version: "2.4"\nservices: {}'],
  ['version: "3.14"\nservices: {}'],
  ['- a'],
  ['services:\n  web:\n    image: a\n    image: b\n'],
  [svc('environment: {X: "a${B:+x}"}')],
  [svc('environment: ["X=$5"]')],
  ['services:\n  web:\n    image: "${IMG:?set IMG}"\n'],
  [svc('deploy: {replicas: "${N}"}'), { N: 'x' }],
  [svc('deploy: {replicas: "${N}"}'), { N: '3' }],
  [svc('read_only: "$R"'), { R: 'maybe' }],
  [svc('deploy: {update_config: {max_failure_ratio: "$R"}}'), { R: 'x' }],
  [svc('environment: {A: "${UNSET:-${B}}", C: "$$HOME"}'), { B: 'bee' }],
];

const dir = mkdtempSync(join(tmpdir(), 'tss-compose-parity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function theirs(text: string, env: Record<string, string>): string {
  const f = join(dir, 'compose.yml');
  writeFileSync(f, text);
  try {
    execFileSync('docker', ['stack', 'config', '-c', f], {
      env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return 'accepted';
  } catch (err) {
    return String((err as { stderr: Buffer }).stderr).trim();
  }
}

function ours(text: string, env: Record<string, string>): string {
  try {
    loadComposeFiles([{ name: 'compose.yml', text }], { env, workingDir: dir, readFile: (p) => readFileSync(p) });
    return 'accepted';
  } catch (err) {
    return (err as Error).message.trim();
  }
}

describe('parity with docker stack config', () => {
  it.skipIf(!haveDocker)(
    'refuses what docker refuses, with the same text, and accepts what it accepts',
    () => {
      const differ = CASES.flatMap(([text, env = {}]) => {
        const d = theirs(text, env);
        const o = ours(text, env);
        return d === o ? [] : [{ text, env, docker: d, ours: o }];
      });
      expect(differ).toEqual([]);
    },
    60_000,
  );
});
