// Networks, secrets and configs in Docker's JSON: what the list and inspect
// routes answer, the create bodies the docker CLI sends read into our specs,
// every value tsswarm cannot honour refused by its Docker path, and the
// filters dockerd applies.
import { describe, expect, it } from 'vitest';
import { Config, Network, NetworkSpec, Secret } from '../../../proto/gen/objects.js';
import { parseDockerFilters } from '../../../spec/docker/filters.js';
import {
  configSpecFromDocker,
  fileObjectFilter,
  fileObjectToDocker,
  networkFilter,
  networkSpecFromDocker,
  networkToDocker,
  secretSpecFromDocker,
} from '../../../spec/docker/objects.js';

const refused = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a refusal');
};

describe('networks', () => {
  it('reads the body docker network create -d overlay --attachable --subnet sends', () => {
    const spec = networkSpecFromDocker({
      Driver: 'overlay',
      Scope: '',
      IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: '10.20.0.0/24' }] },
      Internal: false,
      Attachable: true,
      Ingress: false,
      ConfigOnly: false,
      ConfigFrom: null,
      Options: { 'com.docker.network.driver.mtu': '1400' },
      Labels: { a: 'b' },
      Name: 'backend',
      CheckDuplicate: true,
    });
    expect(spec).toMatchObject({ name: 'backend', driver: 'overlay', subnet: '10.20.0.0/24', attachable: true, labels: { a: 'b' } });
    expect(spec.driverOpts).toEqual({ 'com.docker.network.driver.mtu': '1400' });
  });

  it('refuses by Docker path what tsswarm cannot honour, and a missing name', () => {
    expect(refused(() => networkSpecFromDocker({}))).toContain('Name is required');
    expect(refused(() => networkSpecFromDocker({ Name: 'n', Driver: 'macvlan' }))).toContain('Driver is not supported');
    expect(refused(() => networkSpecFromDocker({ Name: 'n', Scope: 'local' }))).toContain('Scope is not supported');
    expect(refused(() => networkSpecFromDocker({ Name: 'n', EnableIPv6: true }))).toContain('EnableIPv6 is not supported');
    expect(refused(() => networkSpecFromDocker({ Name: 'n', ConfigOnly: true }))).toContain('ConfigOnly is not supported');
    expect(refused(() => networkSpecFromDocker({ Name: 'n', IPAM: { Driver: 'dhcp' } }))).toContain('IPAM.Driver is not supported');
    expect(
      refused(() => networkSpecFromDocker({ Name: 'n', IPAM: { Config: [{ Subnet: '10.1.0.0/24' }, { Subnet: '10.2.0.0/24' }] } })),
    ).toContain('IPAM.Config is not supported');
    expect(
      refused(() => networkSpecFromDocker({ Name: 'n', IPAM: { Config: [{ Subnet: '10.1.0.0/24', IPRange: '10.1.0.0/25' }] } })),
    ).toContain('IPAM.Config[0].IPRange is not supported');
    expect(refused(() => networkSpecFromDocker({ Name: 'n', Attachable: 'yes' }))).toContain('Attachable must be true or false');
    expect(refused(() => networkSpecFromDocker([]))).toContain('must be a JSON object');
  });

  const net = Network.create({
    meta: { id: 'n1abc', version: 4, createdAt: 1000, updatedAt: 2000 },
    spec: NetworkSpec.create({ name: 'backend', driver: 'overlay', attachable: true, labels: { tier: 'b' } }),
    status: { vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1', message: '' },
  });

  it('answers a network as dockerd: Id, swarm scope, the allocated subnet, the VNI in Options', () => {
    expect(networkToDocker(net)).toMatchObject({
      Name: 'backend',
      Id: 'n1abc',
      Scope: 'swarm',
      Driver: 'overlay',
      Attachable: true,
      Ingress: false,
      IPAM: { Driver: 'default', Config: [{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }] },
      Options: { 'com.docker.network.driver.overlay.vxlanid_list': '4097' },
      Labels: { tier: 'b' },
    });
  });

  it('answers as dockerd 20.10 (API 1.41) does for a swarm network: no EnableIPv4, Containers null, no labels as null', () => {
    const bare = Network.create({ ...net, spec: NetworkSpec.create({ name: 'plain', driver: 'overlay' }) });
    const shown = networkToDocker(bare);
    expect(shown).not.toHaveProperty('EnableIPv4');
    expect(shown.Containers).toBeNull();
    expect(shown.Labels).toBeNull();
    expect(networkToDocker(net).Labels).toEqual({ tier: 'b' });
  });

  it('filters: id prefix, name, driver, label, scope, type; unknown keys refused', () => {
    const f = (q: object, inUse?: boolean) => networkFilter(parseDockerFilters(JSON.stringify(q)), () => inUse ?? true)(net);
    expect(f({ id: { n1: true } })).toBe(true);
    expect(f({ id: { x: true } })).toBe(false);
    expect(f({ name: { back: true } })).toBe(true);
    expect(f({ driver: { bridge: true } })).toBe(false);
    expect(f({ label: { 'tier=b': true } })).toBe(true);
    expect(f({ scope: { local: true } })).toBe(false);
    expect(f({ type: { custom: true } })).toBe(true);
    expect(f({ dangling: { true: true } }, false)).toBe(true);
    expect(f({ dangling: { true: true } }, true)).toBe(false);
    expect(refused(() => f({ colour: { red: true } }))).toBe("invalid filter 'colour'");
    expect(refused(() => f({ type: { odd: true } }))).toContain("'type'='odd'");
  });
});

describe('secrets and configs', () => {
  it('reads Name, Labels and base64 Data; refuses a driver, templating and bad base64', () => {
    const s = secretSpecFromDocker({ Name: 'pw', Labels: { a: '1' }, Data: Buffer.from('hunter2').toString('base64') });
    expect(s.name).toBe('pw');
    expect(Buffer.from(s.data).toString()).toBe('hunter2');
    expect(configSpecFromDocker({ Name: 'c', Data: Buffer.from('x=1').toString('base64') }).data).toEqual(
      new Uint8Array(Buffer.from('x=1')),
    );
    expect(refused(() => secretSpecFromDocker({ Name: 'pw', Driver: { Name: 'vault' } }))).toContain('Driver is not supported');
    expect(refused(() => configSpecFromDocker({ Name: 'c', Templating: { Name: 'golang' } }))).toContain('Templating is not supported');
    expect(refused(() => secretSpecFromDocker({ Name: 'pw', Data: 'not base64!' }))).toBe('Data must be base64');
  });

  it('never answers a secret value; a config answers its data; filters by name, names, id, label', () => {
    const sec = Secret.create({
      meta: { id: 's1', version: 2, createdAt: 0, updatedAt: 0 },
      spec: { name: 'pw', labels: { env: 'e2e' }, data: new Uint8Array(Buffer.from('hunter2')) },
    });
    const shown = fileObjectToDocker(sec, false);
    expect(JSON.stringify(shown)).not.toContain(Buffer.from('hunter2').toString('base64'));
    expect(shown).toMatchObject({ ID: 's1', Version: { Index: 2 }, Spec: { Name: 'pw', Labels: { env: 'e2e' } } });
    const conf = Config.create({
      meta: { id: 'c1', version: 1, createdAt: 0, updatedAt: 0 },
      spec: { name: 'app.conf', labels: {}, data: new Uint8Array(Buffer.from('x=1')) },
    });
    expect(fileObjectToDocker(conf, true)).toMatchObject({ Spec: { Data: Buffer.from('x=1').toString('base64') } });
    const keep = (q: object) => fileObjectFilter(parseDockerFilters(JSON.stringify(q)))(sec);
    expect(keep({ name: { p: true } })).toBe(true);
    expect(keep({ names: { p: true } })).toBe(false);
    expect(keep({ names: { pw: true } })).toBe(true);
    expect(keep({ label: { env: true } })).toBe(true);
    expect(keep({ id: { x: true } })).toBe(false);
  });
});
