// Listing like docker against a lone manager: `--filter` with docker's keys and
// messages on node ls, node ps, service ls, service ps and network ls, and
// `--format` templates (fields, json, tables) on those and on the inspects.
import type * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterCommands } from '../../cli/cluster.js';
import { networkCommand } from '../../cli/network.js';
import { serviceCommand } from '../../cli/service.js';
import { type LoneManager, startLoneManager } from '../manager/lone-manager.js';
import { until } from '../lib/wait.js';
import { serveLoneManager } from './lone-cli.js';
import { runCommand } from './run-command.js';

const dir = mkdtempSync(join(tmpdir(), 'tss-listing-cli-'));
const sock = join(dir, 'cli.sock');
let cliServer: grpc.Server;
let lone: LoneManager;
const groups = { node: clusterCommands.find((c) => c.name === 'node')!, service: serviceCommand, network: networkCommand };
const tss = (...argv: string[]) => runCommand(groups, `unix://${sock}`, argv);
const ok = async (...argv: string[]): Promise<string> => {
  const r = await tss(...argv);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return r.out;
};

beforeAll(async () => {
  lone = await startLoneManager('m1', 'c-listing-cli');
  cliServer = await serveLoneManager(lone, sock);
  await ok('network', 'create', '--label', 'tier=front', 'tss-front');
  await ok('network', 'create', 'tss-back');
  await ok(
    'service',
    'create',
    '--detach',
    '--name',
    'web',
    '--label',
    'tier=front',
    '--replicas',
    '2',
    '--network',
    'tss-front',
    'registry.test/web:1',
  );
  await ok('service', 'create', '--detach', '--name', 'db', '--mode', 'global', 'registry.test/db:1');
  // Tasks exist once the orchestrator has run.
  await until('web tasks', () => lone.manager.store.view((tx) => tx.tasks.list()).some((t) => t.serviceName === 'web'));
}, 30_000);

afterAll(async () => {
  await new Promise<void>((res) => cliServer?.tryShutdown(() => res()));
  await lone?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('service ls', () => {
  it('filters with docker`s keys: name and id by prefix, label, mode', async () => {
    expect(await ok('service', 'ls', '-f', 'name=we', '--format', '{{.Name}}')).toBe('web\n');
    expect(await ok('service', 'ls', '--filter', 'label=tier=front', '--format', '{{.Name}}')).toBe('web\n');
    expect(await ok('service', 'ls', '--filter', 'label=tier', '--format', '{{.Name}}')).toBe('web\n');
    expect(await ok('service', 'ls', '--filter', 'mode=global', '--format', '{{.Name}} {{.Mode}} {{.Replicas}}')).toMatch(
      /^db global \d+\/\d+\n$/,
    );
    const id = lone.manager.store.view((tx) => tx.services.list()).find((s) => s.spec.name === 'db')!.meta.id;
    expect(await ok('service', 'ls', '-f', `id=${id.slice(0, 5)}`, '-q')).toBe(`${id}\n`);
    expect(await ok('service', 'ls', '-f', 'name=web', '-f', 'name=db', '--format', '{{.Name}}')).toBe('db\nweb\n');
  });

  it('refuses an unknown key or a filter without = with docker`s messages', async () => {
    expect(await tss('service', 'ls', '-f', 'colour=red')).toMatchObject({ code: 1, err: "tsswarm: invalid filter 'colour'\n" });
    expect((await tss('service', 'ls', '-f', 'web')).err).toMatch(/^tsswarm: bad format of filter \(expected name=value\)/);
  });

  it('formats with docker`s fields, tables and json; json alone stays our JSON array', async () => {
    const t = await ok('service', 'ls', '--format', 'table {{.Name}}\\t{{.Mode}}\\t{{.Image}}');
    expect(t.split('\n')[0]).toBe('NAME      MODE         IMAGE');
    expect(t).toMatch(/\nweb {7}replicated {3}registry\.test\/web:1\n/);
    const line = JSON.parse((await ok('service', 'ls', '-f', 'name=web', '--format', '{{json .}}')).trim()) as Record<string, string>;
    expect(Object.keys(line)).toEqual(['ID', 'Name', 'Mode', 'Replicas', 'Image', 'Ports']);
    expect(line).toMatchObject({ Name: 'web', Mode: 'replicated', Image: 'registry.test/web:1' });
    expect(JSON.parse(await ok('service', 'ls', '--format', 'json'))).toHaveLength(2);
    expect(await tss('service', 'ls', '--format', '{{.Nope}}')).toMatchObject({
      code: 1,
      err: `tsswarm: template parsing error: template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type *service.serviceContext\n`,
    });
    expect((await tss('service', 'ls', '--format', '{{.Name')).err).toBe(
      'tsswarm: template parsing error: template: :1: unclosed action\n',
    );
  });
});

describe('service ps and node ps', () => {
  it('service ps filters by desired-state, name and node, and formats docker`s task fields', async () => {
    const names = await ok('service', 'ps', '-f', 'desired-state=running', '--format', '{{.Name}} {{.DesiredState}}', 'web');
    expect(names.split('\n').filter(Boolean).sort()).toEqual(['web.1 Running', 'web.2 Running']);
    expect(await ok('service', 'ps', '-f', 'name=web.2', '--format', '{{.Name}}', 'web')).toBe('web.2\n');
    expect(await ok('service', 'ps', '-f', 'desired-state=shutdown', '-q', 'web')).toBe('');
    expect(await ok('service', 'ps', '-f', 'node=nowhere', '-q', 'web')).toBe('');
    // node=self is this daemon's node (m1), as the docker CLI resolves it; a hostname works too. (db is global: its task is on m1.)
    const dbOnM1 = () =>
      lone.manager.store
        .view((tx) => tx.tasks.list())
        .filter((t) => t.serviceName === 'db' && t.nodeId === 'm1')
        .map((t) => t.meta.id)
        .sort();
    await until('the db task on m1', () => dbOnM1().length > 0);
    for (const ref of ['self', 'm1'])
      expect((await ok('service', 'ps', '-f', `node=${ref}`, '--no-trunc', '-q', 'db')).split('\n').filter(Boolean).sort()).toEqual(
        dbOnM1(),
      );
    expect((await tss('service', 'ps', '-f', 'desired-state=sleeping', 'web')).err).toBe(
      "tsswarm: Invalid desired-state filter: 'sleeping'\n",
    );
    expect((await tss('service', 'ps', '-f', 'mode=global', 'web')).err).toBe("tsswarm: invalid filter 'mode'\n");
    const header = (await ok('service', 'ps', '--format', 'table {{.ID}}\\t{{.CurrentState}}\\t{{.Error}}', 'web')).split('\n')[0];
    expect(header).toMatch(/^ID {13}CURRENT STATE\s+ERROR$/);
  });

  it('node ps lists the tasks on a node (self by default), with the same filters and fields', async () => {
    await until('tasks on m1', () => lone.manager.store.view((tx) => tx.tasks.list()).some((t) => t.nodeId === 'm1'));
    const onM1 = lone.manager.store
      .view((tx) => tx.tasks.list())
      .filter((t) => t.nodeId === 'm1')
      .map((t) => t.meta.id)
      .sort();
    const listed = (await ok('node', 'ps', '--no-trunc', '-q')).split('\n').filter(Boolean).sort();
    expect(listed).toEqual(onM1);
    expect((await ok('node', 'ps', '--no-trunc', '-q', 'm1')).split('\n').filter(Boolean).sort()).toEqual(onM1);
    const fields = JSON.parse((await ok('node', 'ps', '--format', '{{json .}}')).split('\n')[0]!) as Record<string, string>;
    expect(Object.keys(fields)).toEqual(['ID', 'Name', 'Image', 'Node', 'DesiredState', 'CurrentState', 'Error', 'Ports']);
    expect(fields.Node).toBe('m1');
    expect(await ok('node', 'ps', '-f', 'name=nothing-here', '-q')).toBe('');
    expect((await tss('node', 'ps', '-f', 'colour=red')).err).toBe("tsswarm: invalid filter 'colour'\n");
    expect((await tss('node', 'ps', 'no-such-node')).code).toBe(1);
  });
});

describe('node ls and node inspect', () => {
  it('filters by role, name, id, membership and node.label with docker`s value checks', async () => {
    expect(await ok('node', 'ls', '-f', 'role=manager', '--format', '{{.Hostname}} {{.Self}} {{.ManagerStatus}}')).toBe('m1 true Leader\n');
    expect(await ok('node', 'ls', '-f', 'role=worker', '-q')).toBe('');
    expect(await ok('node', 'ls', '-f', 'name=m', '-f', 'membership=accepted', '--format', '{{.ID}}')).toBe('m1\n');
    expect(await ok('node', 'ls', '-f', 'node.label=zone', '-q')).toBe('');
    expect((await tss('node', 'ls', '-f', 'role=boss')).err).toBe("tsswarm: Invalid role filter: 'boss'\n");
    expect((await tss('node', 'ls', '-f', 'engine=x')).err).toBe("tsswarm: invalid filter 'engine'\n");
  });

  it('node ls --format keeps docker`s field names; node inspect --format reads the Docker API shape', async () => {
    const line = JSON.parse(await ok('node', 'ls', '--format', '{{json .}}')) as Record<string, unknown>;
    expect(Object.keys(line)).toEqual(['ID', 'Self', 'Hostname', 'Status', 'Availability', 'ManagerStatus', 'EngineVersion', 'TLSStatus']);
    expect(await ok('node', 'inspect', '--format', '{{.ID}} {{.Spec.Role}} {{.Spec.Availability}} {{.Description.Hostname}}', 'self')).toBe(
      'm1 manager active m1\n',
    );
    expect((await tss('node', 'inspect', '--format', '{{.Spec.Nope}}', 'self')).err).toMatch(/can't evaluate field Nope/);
    expect((await tss('node', 'inspect', '--format', '{{.ID}}', '--pretty', 'self')).err).toMatch(
      /--format is incompatible with human friendly format/,
    );
  });
});

describe('service inspect and network ls / inspect', () => {
  it('service inspect --format reads the Docker API shape, defaults inserted', async () => {
    expect(
      await ok('service', 'inspect', '--format', '{{.Spec.Name}} {{index .Spec.Labels "tier"}} {{.Spec.Mode.Replicated.Replicas}}', 'web'),
    ).toBe('web front 2\n');
    expect(await ok('service', 'inspect', '-f', '{{.Spec.Name}}', 'web', 'db')).toBe('web\ndb\n');
    expect(JSON.parse(await ok('service', 'inspect', '-f', '{{json .Spec.Labels}}', 'web'))).toEqual({ tier: 'front' });
  });

  it('network ls filters with docker`s keys, dangling included, and formats docker`s fields', async () => {
    expect(await ok('network', 'ls', '-f', 'name=tss-', '--format', '{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}}')).toBe(
      'tss-back overlay swarm \ntss-front overlay swarm tier=front\n',
    );
    expect(await ok('network', 'ls', '-f', 'label=tier=front', '--format', '{{.Name}}')).toBe('tss-front\n');
    expect(await ok('network', 'ls', '-f', 'name=tss-', '-f', 'dangling=true', '--format', '{{.Name}}')).toBe('tss-back\n');
    expect(await ok('network', 'ls', '-f', 'name=tss-', '-f', 'dangling=false', '--format', '{{.Name}}')).toBe('tss-front\n');
    expect(await ok('network', 'ls', '-f', 'type=builtin', '-f', 'name=tss-', '-q')).toBe('');
    expect((await tss('network', 'ls', '-f', 'type=odd')).err).toBe("tsswarm: invalid filter: 'type'='odd'\n");
    expect((await tss('network', 'ls', '-f', 'colour=red')).err).toBe("tsswarm: invalid filter 'colour'\n");
    const t = (await ok('network', 'ls', '-f', 'name=tss-front', '--format', 'table {{.ID}}\\t{{.Name}}\\t{{.CreatedAt}}')).split('\n');
    expect(t[0]).toMatch(/^NETWORK ID\s+NAME {8}CREATED AT$/);
    expect(t[1]).toMatch(/^[0-9a-z]{1,12}\s+tss-front {3}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC$/);
  });

  it('network inspect --format sees the Engine API shape; json stays ours', async () => {
    expect(await ok('network', 'inspect', '--format', '{{.Name}} {{.Driver}} {{.Scope}} {{.Labels.tier}}', 'tss-front')).toBe(
      'tss-front overlay swarm front\n',
    );
    const id = (await ok('network', 'ls', '-f', 'name=tss-front', '--no-trunc', '-q')).trim();
    expect(await ok('network', 'inspect', '--format', '{{.ID}}={{.Id}}', 'tss-front')).toBe(`${id}=${id}\n`);
    expect(JSON.parse(await ok('network', 'inspect', '--format', 'json', 'tss-front'))[0]).toHaveProperty('services');
  });
});
