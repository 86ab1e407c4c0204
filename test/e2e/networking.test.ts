// Overlay networking end to end on a sandbox of real daemons (3 managers, 2
// workers) running real containers: replicas on different hosts talk over
// VXLAN at full MTU, a client reaches every replica through the service VIP
// by name, tasks.<service> lists them, networks are isolated from each other,
// scaling down removes the gone replica's FDB, neighbor and VIP entries on
// every host, a restarted agent repairs entries deleted under it (and
// `network inspect --dataplane` shows such an entry missing, then in sync),
// and nothing of a network is left once its services and it are removed.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { defaultNameTag } from '../../agent/overlay/names.js';
import { TaskState } from '../../proto/gen/objects.js';
import { canRunSandbox, joinByCli, until, tsswarmOn } from './helpers.js';
import { have } from '../have.js';

const root = `/tmp/tss-e2en-${process.pid}`;
const prefix = `tss-n${process.pid % 1000}-`;
const haveRuntime = have('conmon') && have('runc') && have('nft') && have('bridge', ['-V']);
const canRun = canRunSandbox && haveRuntime;
if (!canRun) console.log('networking e2e skipped: needs root, nsenter, runc, conmon, nft and iproute2');

// The daemons repair their data plane only at start and on changes here, so
// that what a test breaks by hand stays broken until it looks; the restart test
// turns periodic repair on for the daemon it restarts.
process.env.TSSWARM_DATAPLANE_REPAIR_MS = '0';

const sb = new Sandbox({
  root,
  prefix,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    // 5 s beats give a 15 s grace before DOWN: a restart (SIGTERM stop, tsx start, TLS session) on a
    // loaded 2-core CI box must fit inside it, or the restart tests see their tasks replaced.
    return { ...d, argv: [...d.argv, '--heartbeat-period', '5000'] };
  },
});

const { ok } = tsswarmOn(sb, 90_000);

interface TaskJson {
  meta: { id: string };
  nodeId: string;
  slot: number;
  desiredState: number;
  status: { state: number; pid: number };
  networks: { networkId: string; addresses: string[] }[];
}

let M = '';
const hostOfNode = new Map<string, string>();

async function running(service: string, n: number): Promise<TaskJson[]> {
  return until(
    `${n} running tasks of ${service}`,
    async () => {
      const all = JSON.parse(await ok(M, 'service', 'ps', '--format', 'json', service)) as TaskJson[];
      const r = all.filter((t) => t.desiredState === TaskState.RUNNING && t.status.state === TaskState.RUNNING);
      const wanted = all.filter((t) => t.desiredState === TaskState.RUNNING);
      return r.length === n && wanted.length === n ? r : false;
    },
    90_000,
    500,
  );
}

const ipOn = (t: TaskJson, networkId: string): string =>
  t.networks.find((n) => n.networkId === networkId)!.addresses[0]!.replace(/\/\d+$/, '');
const macOf = (ip: string): string => ['02', '42', ...ip.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');

/** Runs a command in a task's container (through the cluster, like a user would). */
async function execIn(service: string, slot: number, script: string): Promise<string> {
  return ok(M, 'service', 'exec', '--slot', String(slot), service, '--', 'sh', '-c', script);
}

/** What the data plane of `host` holds for a network: FDB MACs and neighbor IPs on its VXLAN device. */
function dataplane(host: string, vni: number): { fdb: string; neigh: string } {
  const ns = `/run/netns/tss-ov-${vni}-${defaultNameTag(host)}`;
  const sh = (argv: string[]): string => {
    try {
      return execFileSync('nsenter', [`--net=${ns}`, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  // Only the static entries the agent programs (`dst VTEP`), not what the bridge learned on its VXLAN port.
  const fdb = sh(['bridge', 'fdb', 'show', 'dev', `tssvx${vni}`])
    .split('\n')
    .filter((l) => l.includes(' dst '))
    .join('\n');
  return { fdb, neigh: sh(['ip', 'neigh', 'show', 'dev', `tssvx${vni}`]) };
}

/** The VIP table in a container's namespace (the nft backend). */
function vipTable(pid: number): string {
  try {
    return execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'nft', 'list', 'table', 'ip', 'tss-lb'], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

describe.skipIf(!canRun)('overlay networking on a sandbox: 3 managers, 2 workers', () => {
  let front = '';
  let frontVni = 0;
  let web: TaskJson[] = [];

  beforeAll(async () => {
    await sb.up({
      managers: 3,
      workers: 2,
      preloadImages: true,
      bootstrap: (s) => joinByCli(s),
    });
    M = sb.hosts()[0]!.name;
    await until(
      '5 READY nodes',
      async () => {
        const ns = JSON.parse(await ok(M, 'node', 'ls', '--format', 'json')) as {
          ID: string;
          Spec: { Name: string };
          Status: { State: string };
        }[];
        for (const n of ns) hostOfNode.set(n.ID, n.Spec.Name);
        return ns.length === 5 && ns.every((n) => n.Status.State === 'ready');
      },
      90_000,
    );
    front = (await ok(M, 'network', 'create', '-d', 'overlay', 'front')).trim();
    await ok(M, 'network', 'create', '-d', 'overlay', 'back');
    const net = JSON.parse(await ok(M, 'network', 'inspect', 'front')) as
      | Array<{ status?: { vni: number } }>
      | { status?: { vni: number } };
    frontVni = (Array.isArray(net) ? net[0]! : net).status!.vni;
    // Two replicas serving their hostname on port 80, spread over two hosts; nothing published: the VIP forwards every port.
    await ok(
      M,
      'service',
      'create',
      '--detach',
      '--name',
      'web',
      '--replicas',
      '2',
      '--network',
      'front',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www',
    );
    await ok(M, 'service', 'create', '--detach', '--name', 'client', '--network', 'front', SANDBOX_IMAGE, 'sleep', '3600');
    web = await running('web', 2);
    const [client] = await running('client', 1);
    // db on the client's host: isolation must hold there too (one egress bridge, one host).
    await ok(
      M,
      'service',
      'create',
      '--detach',
      '--name',
      'db',
      '--network',
      'back',
      '--constraint',
      `node.id==${client!.nodeId}`,
      SANDBOX_IMAGE,
      'sleep',
      '3600',
    );
    await running('db', 1);
  }, 300_000);

  afterAll(async () => {
    await sb.down();
    const left = execFileSync('sh', ['-c', `ip netns list | grep -c -- '-${prefix.replace(/^tss-/, '')}' || true`], {
      encoding: 'utf8',
    }).trim();
    expect(left).toBe('0');
  }, 120_000);

  it('replicas on different hosts ping each other at full MTU and move 10 MB intact', async () => {
    expect(new Set(web.map((t) => t.nodeId)).size).toBe(2);
    const [a, b] = [...web].sort((x, y) => x.slot - y.slot);
    const ipB = ipOn(b!, front);
    // 1422 bytes of ICMP payload fill a 1450-byte overlay MTU exactly.
    expect(await execIn('web', a!.slot, `ping -c 3 -W 2 -s 1422 ${ipB} | grep -c 'bytes from'`)).toMatch(/^3/);
    const sent = await execIn(
      'web',
      b!.slot,
      'mkdir -p /srv && dd if=/dev/urandom of=/srv/blob bs=1M count=10 2>/dev/null && md5sum /srv/blob | cut -d" " -f1 && (httpd -p 8000 -h /srv)',
    );
    const got = await execIn('web', a!.slot, `timeout 30 wget -qO- http://${ipB}:8000/blob | md5sum | cut -d" " -f1`);
    expect(got.trim()).toBe(sent.trim().split('\n')[0]);
  }, 120_000);

  it('a client reaches every replica through the service VIP by name, and tasks.web lists them all', async () => {
    const tasksLookup = await execIn('client', 1, 'nslookup tasks.web');
    for (const t of web) expect(tasksLookup).toContain(ipOn(t, front));
    const seen = await execIn('client', 1, 'for i in $(seq 1 30); do timeout 5 wget -qO- http://web/; done');
    const names = new Set(
      seen
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    );
    expect(names.size).toBe(2);
    for (const t of web) expect(names).toContain(t.meta.id.slice(0, 12));
  }, 120_000);

  it('networks are isolated: a container on one reaches nothing on the other, not even through the egress bridge', async () => {
    const [db] = await running('db', 1);
    const backIp = db!.networks[0]!.addresses[0]!.replace(/\/\d+$/, '');
    const out = await execIn(
      'client',
      1,
      `ping -c 1 -W 1 ${backIp} >/dev/null 2>&1 && echo reached || echo isolated; nslookup db >/dev/null 2>&1 && echo named || echo unnamed`,
    );
    expect(out).toContain('isolated');
    expect(out).toContain('unnamed');
    const egress = (await execIn('db', 1, "ip -4 -o addr show | awk '/172\\./ {print $4}'")).trim().replace(/\/\d+$/, '');
    expect(egress).toMatch(/^172\./);
    expect(await execIn('client', 1, `ping -c 1 -W 1 ${egress} >/dev/null 2>&1 && echo reached || echo isolated`)).toContain('isolated');
  }, 120_000);

  it('scaling down removes the gone replica from FDB, neighbor and VIP tables on every host', async () => {
    const [client] = await running('client', 1);
    const gone = [...web].sort((x, y) => y.slot - x.slot)[0]!;
    const ip = ipOn(gone, front);
    // Before: every other host on the network knows it.
    const hosts = sb.hosts().map((h) => h.name);
    expect(vipTable(client!.status.pid)).toContain(ip);
    await ok(M, 'service', 'scale', '--detach', 'web=1');
    await until(
      `${ip} gone from every data plane`,
      async () => {
        for (const h of hosts) {
          const d = dataplane(h, frontVni);
          if (d.fdb.includes(macOf(ip)) || d.neigh.includes(`${ip} `)) return false;
        }
        return !vipTable(client!.status.pid).includes(ip);
      },
      60_000,
      500,
    );
    web = await running('web', 1);
    // The one left still answers through the VIP.
    expect(
      await until('the VIP to answer', async () => (await execIn('client', 1, 'timeout 5 wget -qO- http://web/')).trim(), 30_000),
    ).toBe(web[0]!.meta.id.slice(0, 12));
  }, 180_000);

  it('network inspect --dataplane reports an FDB entry deleted by hand as missing on its node, and in sync once the agent repaired it', async () => {
    const [client] = await running('client', 1);
    const [w] = await running('web', 1);
    const host = hostOfNode.get(client!.nodeId)!;
    const mac = macOf(ipOn(w!, front));
    interface View {
      inSync: boolean;
      differences: number;
      nodes: {
        nodeId: string;
        hostname: string;
        error?: string;
        report?: {
          differences: number;
          fdb: { differences: { kind: string; key: string }[] };
          containers: { expected: { backends: string[] }[] }[];
        };
      }[];
    }
    const view = async (...more: string[]): Promise<View> =>
      JSON.parse(await ok(M, 'network', 'inspect', 'front', '--dataplane', '--format', 'json', ...more)) as View;
    // Both nodes running front's tasks hold it, and are in sync (the client's VIP table included).
    const before = await until(
      'front in sync on its nodes',
      async () => {
        const v = await view();
        return v.inSync ? v : false;
      },
      60_000,
      1000,
    );
    expect(before.nodes.map((n) => n.nodeId).sort()).toEqual([client!.nodeId, w!.nodeId].sort());
    const onClient = before.nodes.find((n) => n.nodeId === client!.nodeId)!.report!;
    // One backend, web's task: on its port 80, or on any port when the VIP forwards every port.
    expect(onClient.containers[0]!.expected[0]!.backends).toEqual([
      expect.stringMatching(new RegExp(`^${ipOn(w!, front).replace(/\./g, '\\.')}(:80)?$`)),
    ]);

    execFileSync('nsenter', [
      `--net=/run/netns/tss-ov-${frontVni}-${defaultNameTag(host)}`,
      'bridge',
      'fdb',
      'del',
      mac,
      'dev',
      `tssvx${frontVni}`,
      'self',
    ]);
    const after = await view();
    expect(after.inSync).toBe(false);
    expect(after.differences).toBe(1);
    expect(after.nodes.find((n) => n.nodeId === client!.nodeId)!.report!.fdb.differences).toEqual([
      expect.objectContaining({ kind: 'missing', key: mac }),
    ]);
    expect(after.nodes.find((n) => n.nodeId === w!.nodeId)!.report!.differences).toBe(0);
    const text = await ok(M, 'network', 'inspect', 'front', '--dataplane', '--node', host);
    expect(text).toMatch(new RegExp(`${mac}\\s+\\S+\\s+-\\s+<- missing`));
    expect(text.trimEnd().split('\n').at(-1)).toBe('1 difference');

    // A restarted agent repairs what it finds missing.
    expect(await sb.stop(host)).toBe(true);
    await sb.start(host);
    await until(
      `${host} in sync again`,
      async () => {
        const v = await view('--node', host);
        return v.inSync && v.nodes.length === 1;
      },
      90_000,
      1000,
    );
    expect((await ok(M, 'network', 'inspect', 'front', '--dataplane')).trimEnd().split('\n').at(-1)).toBe('in sync');
  }, 240_000);

  it('a restarted agent repairs FDB and neighbor entries deleted under it, and a running one repairs them periodically', async () => {
    const [client] = await running('client', 1);
    const [w] = await running('web', 1);
    // The client's host holds an entry for web only if web runs elsewhere: make sure of it.
    expect(client!.nodeId).not.toBe(w!.nodeId);
    const host = hostOfNode.get(client!.nodeId)!;
    const ip = ipOn(w!, front);
    const ns = `--net=/run/netns/tss-ov-${frontVni}-${defaultNameTag(host)}`;
    expect(dataplane(host, frontVni).fdb).toContain(macOf(ip));
    expect(await sb.stop(host)).toBe(true);
    execFileSync('nsenter', [ns, 'bridge', 'fdb', 'del', macOf(ip), 'dev', `tssvx${frontVni}`, 'self']);
    execFileSync('nsenter', [ns, 'ip', 'neigh', 'del', ip, 'dev', `tssvx${frontVni}`]);
    expect(dataplane(host, frontVni).fdb).not.toContain(macOf(ip));
    process.env.TSSWARM_DATAPLANE_REPAIR_MS = '1500';
    try {
      await sb.start(host);
    } finally {
      process.env.TSSWARM_DATAPLANE_REPAIR_MS = '0';
    }
    await until(
      'the deleted entries back',
      async () => {
        const d = dataplane(host, frontVni);
        return d.fdb.includes(macOf(ip)) && d.neigh.includes(`${ip} `);
      },
      60_000,
      500,
    );
    // And without a restart: the running agent's periodic repair puts them back.
    execFileSync('nsenter', [ns, 'bridge', 'fdb', 'del', macOf(ip), 'dev', `tssvx${frontVni}`, 'self']);
    execFileSync('nsenter', [ns, 'ip', 'neigh', 'del', ip, 'dev', `tssvx${frontVni}`]);
    await until(
      'the entries back by the periodic repair',
      async () => {
        const d = dataplane(host, frontVni);
        return d.fdb.includes(macOf(ip)) && d.neigh.includes(`${ip} `);
      },
      30_000,
      500,
    );
    expect(
      await until('the VIP to answer', async () => (await execIn('client', 1, 'timeout 5 wget -qO- http://web/')).trim(), 30_000),
    ).toBe(w!.meta.id.slice(0, 12));
  }, 180_000);

  it('a port published through the routing mesh answers on every host, from a task on one of them', async () => {
    await ok(
      M,
      'service',
      'create',
      '--detach',
      '--name',
      'api',
      '--publish',
      'published=8080,target=80',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      'mkdir -p /www && echo api-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www',
    );
    const [api] = await running('api', 1);
    const hosts = sb.hosts();
    const from = hosts.find((h) => h.name !== hostOfNode.get(api!.nodeId))!;
    for (const h of hosts) {
      const body = await until(
        `port 8080 answering on ${h.name} (${h.addr})`,
        async () => {
          try {
            return execFileSync(
              'nsenter',
              [`--net=/run/netns/${from.name}`, 'busybox', 'timeout', '3', 'busybox', 'wget', '-qO-', `http://${h.addr}:8080/`],
              { encoding: 'utf8' },
            );
          } catch {
            return '';
          }
        },
        60_000,
        500,
      );
      expect(body.trim()).toBe(`api-${api!.meta.id.slice(0, 12)}`);
    }
  }, 180_000);

  it("a port published in host mode answers only on the node running the task, and the task sees the client's own address", async () => {
    const cgi =
      "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 80 -h /www";
    await ok(
      M,
      'service',
      'create',
      '--detach',
      '--name',
      'edge',
      '--publish',
      'published=9090,target=80,mode=host',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      cgi,
    );
    const [edge] = await running('edge', 1);
    const hosts = sb.hosts();
    const on = hosts.find((h) => h.name === hostOfNode.get(edge!.nodeId))!;
    const [from, other] = hosts.filter((h) => h !== on);
    const get = (addr: string): string => {
      try {
        return execFileSync(
          'nsenter',
          [`--net=/run/netns/${from!.name}`, 'busybox', 'timeout', '3', 'busybox', 'wget', '-qO-', `http://${addr}:9090/cgi-bin/ip`],
          { encoding: 'utf8' },
        );
      } catch {
        return '';
      }
    };
    const body = await until(`port 9090 answering on ${on.name}`, async () => get(on.addr), 60_000, 500);
    // busybox httpd gives the v4-mapped form ([::ffff:10.77.0.11]).
    expect(body.trim().replace(/^\[::ffff:(.*)\]$/, '$1')).toBe(from!.addr);
    expect(get(other!.addr)).toBe('');

    // No published port: the node picks a free one, reports it in the task's status, and serves it.
    await ok(M, 'service', 'create', '--detach', '--name', 'edgepick', '--publish', 'target=80,mode=host', SANDBOX_IMAGE, 'sh', '-c', cgi);
    const picked = await until(
      'edgepick running with its node port in its status',
      async () => {
        const [t] = await running('edgepick', 1);
        const ps = (t!.status as unknown as { portStatus?: { publishedPort: number; targetPort: number }[] }).portStatus ?? [];
        return ps.length === 1 && ps[0]!.publishedPort > 0 ? { t: t!, port: ps[0]!.publishedPort } : false;
      },
      60_000,
      500,
    );
    expect(picked.port).toBeGreaterThan(1024);
    const pickedOn = hosts.find((h) => h.name === hostOfNode.get(picked.t.nodeId))!;
    const via = hosts.find((h) => h !== pickedOn)!;
    const getPicked = (addr: string): string => {
      try {
        return execFileSync(
          'nsenter',
          [
            `--net=/run/netns/${via.name}`,
            'busybox',
            'timeout',
            '3',
            'busybox',
            'wget',
            '-qO-',
            `http://${addr}:${picked.port}/cgi-bin/ip`,
          ],
          { encoding: 'utf8' },
        );
      } catch {
        return '';
      }
    };
    const pickedBody = await until(
      `picked port ${picked.port} answering on ${pickedOn.name}`,
      async () => getPicked(pickedOn.addr),
      60_000,
      500,
    );
    expect(pickedBody.trim().replace(/^\[::ffff:(.*)\]$/, '$1')).toBe(via.addr);
    expect(await ok(M, 'service', 'ps', 'edgepick')).toContain(`*:${picked.port}->80/tcp`);
  }, 180_000);

  it('removing the services and then the networks leaves no overlay namespace, veth or VIP table behind', async () => {
    for (const s of ['web', 'client', 'db', 'api', 'edge', 'edgepick']) await ok(M, 'service', 'rm', s);
    await until(
      'the networks removable',
      async () => {
        const a = await sb.execCapture(M, ['tsswarm', 'network', 'rm', 'front'], { timeoutMs: 30_000 });
        return a.code === 0 || /No such network|not found/i.test(a.stderr);
      },
      90_000,
      1000,
    );
    await until(
      'back removable',
      async () => {
        const a = await sb.execCapture(M, ['tsswarm', 'network', 'rm', 'back'], { timeoutMs: 30_000 });
        return a.code === 0 || /No such network|not found/i.test(a.stderr);
      },
      90_000,
      1000,
    );
    const hosts = sb.hosts().map((h) => h.name);
    await until(
      'no overlay namespace of these hosts',
      async () => {
        const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
        return !hosts.some((h) => new RegExp(`tss-ov-\\d+-${defaultNameTag(h)}\\b`).test(ns));
      },
      60_000,
      500,
    );
    // Containers stopping with their grace period still hold their veths for a while.
    const leftover = (): string[] =>
      hosts.flatMap((h) =>
        execFileSync('nsenter', [`--net=/run/netns/${h}`, 'ip', '-br', 'link'], { encoding: 'utf8' })
          .split('\n')
          .filter((l) => /^(tssv[0-9a-f]{8}|tssg[0-9a-f]{8}|tssvx|tss_ingress)/.test(l))
          .map((l) => `${h}: ${l.split(/\s+/)[0]}`),
      );
    await until('no tss veth or VXLAN device left in the hosts', async () => leftover().length === 0, 60_000, 500).catch(() => {
      throw new Error(`left behind: ${leftover().join(', ')}`);
    });
  }, 300_000);
});
