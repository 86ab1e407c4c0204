// Prometheus' Docker Swarm discovery against tsswarm, for real: Debian's
// `prometheus` binary (scripts/setup.sh installs it with its service held)
// runs in the root network namespace with three dockerswarm_sd_configs jobs
// (roles tasks, services and nodes) whose host is a sandbox manager's docker
// socket, a file on this machine's filesystem. The test waits until its
// /api/v1/targets lists every running replica of a service made with the real
// docker CLI (service and container labels, a port published through the
// mesh and one in host mode, an overlay network), with the labels Prometheus
// derives from tsswarm's answers, the service's published endpoints and
// every node. The config is the one
// docs/docker-api.md shows, plus a last rule that points every scrape at a
// closed loopback port: overlay addresses are not reachable from here, and
// the test sends nothing off the machine. Skipped, saying why, without
// prometheus or docker.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { have } from '../have.js';
import { canRunSandbox, dockerOn, joinByCli, until } from './helpers.js';

const haveDocker = have('docker');
const havePrometheus = have('prometheus');
if (!havePrometheus)
  console.warn("engine-prometheus e2e: skipped, prometheus is not installed (bash scripts/setup.sh installs Debian's, its service held)");
if (!haveDocker) console.warn('engine-prometheus e2e: skipped, the docker CLI is not installed (the test makes its service with it)');

const sb = new Sandbox({
  root: `/tmp/tss-e2eprom-${process.pid}`,
  prefix: `tss-p${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return { ...d, argv: [...d.argv, '--heartbeat-period', '2000'] };
  },
});
const { ok: docker } = dockerOn(sb, 120_000);

const REPLICAS = 3;
const PUBLISHED = 8080;
/** Published in host mode: on each task's own node. */
const HOST_PORT = 9200;
const NODE_PORT = 9100;

/**
 * The Prometheus configuration of docs/docker-api.md for a docker socket, with
 * `extra` relabel rules appended to every job (the test's: no scrape leaves loopback).
 */
function prometheusConfig(socket: string, refresh: string, extra: string): string {
  return `global:
  scrape_interval: 15s

scrape_configs:
  # One target per running replica and published port, at its address on the
  # monitoring network.
  - job_name: swarm-tasks
    dockerswarm_sd_configs:
      - host: unix://${socket}
        role: tasks
        refresh_interval: ${refresh}
        # Only the tasks of services labelled for it (filtered by the manager).
        filters:
          - name: label
            values: [com.example.team=edge]
    relabel_configs:
      - source_labels: [__meta_dockerswarm_task_desired_state]
        regex: running
        action: keep
      - source_labels: [__meta_dockerswarm_network_name]
        regex: backend
        action: keep
      - source_labels: [__meta_dockerswarm_service_name]
        target_label: service
      - source_labels: [__meta_dockerswarm_task_slot]
        target_label: slot
      - source_labels: [__meta_dockerswarm_node_hostname]
        target_label: node
      - source_labels: [__meta_dockerswarm_service_label_com_example_team]
        target_label: team
${extra}
  # Ports published in host mode: one target per task, at its node's address.
  - job_name: swarm-task-host-ports
    dockerswarm_sd_configs:
      - host: unix://${socket}
        role: tasks
        refresh_interval: ${refresh}
    relabel_configs:
      - source_labels: [__meta_dockerswarm_task_desired_state]
        regex: running
        action: keep
      # These targets carry no network labels (the others have one per network address).
      - source_labels: [__meta_dockerswarm_task_port_publish_mode, __meta_dockerswarm_network_name]
        regex: host;
        action: keep
      - source_labels: [__meta_dockerswarm_service_name]
        target_label: service
      - source_labels: [__meta_dockerswarm_node_hostname]
        target_label: node
${extra}
  # One target per service VIP and published port.
  - job_name: swarm-services
    dockerswarm_sd_configs:
      - host: unix://${socket}
        role: services
        refresh_interval: ${refresh}
    relabel_configs:
      - source_labels: [__meta_dockerswarm_service_name]
        target_label: service
${extra}
  # One target per node (e.g. a node exporter on port ${NODE_PORT}).
  - job_name: swarm-nodes
    dockerswarm_sd_configs:
      - host: unix://${socket}
        role: nodes
        port: ${NODE_PORT}
        refresh_interval: ${refresh}
    relabel_configs:
      - source_labels: [__meta_dockerswarm_node_hostname]
        target_label: node
      - source_labels: [__meta_dockerswarm_node_role]
        target_label: role
${extra}`;
}

/** The test's own rules: `instance` keeps the discovered address, every scrape goes to a closed port on loopback. */
const LOOPBACK_ONLY = `      - source_labels: [__address__]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:1
`;

// Where a target was discovered is read from `instance` (set from __address__ by the first rule):
// Prometheus 2.42 shows some discoveredLabels after relabelling rewrote __address__.
interface Target {
  discoveredLabels: Record<string, string>;
  labels: Record<string, string>;
  scrapePool: string;
}

/** A port on loopback that nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

describe.skipIf(!canRunSandbox || !haveDocker || !havePrometheus)("Prometheus' dockerswarm_sd_configs against a tsswarm manager", () => {
  let m = '';
  let dir = '';
  let prom: ChildProcess | undefined;
  let promExit: Promise<void> = Promise.resolve();
  let api = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tss-prom-'));
    await sb.up({ managers: 1, workers: 2, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    m = sb.hosts()[0]!.name;
  }, 240_000);

  afterAll(async () => {
    if (prom && prom.exitCode === null && prom.signalCode === null) {
      prom.kill('SIGTERM');
      const killer = setTimeout(() => prom?.kill('SIGKILL'), 10_000);
      await promExit;
      clearTimeout(killer);
    }
    await sb.down();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('discovers every running replica with its labels, the service endpoints and every node', async () => {
    const hosts = sb.hosts();
    await docker(m, 'node', 'update', '--label-add', 'zone=a', hosts[1]!.name);
    await docker(m, 'network', 'create', '-d', 'overlay', '--label', 'purpose=metrics', 'backend');
    await docker(
      m,
      'service',
      'create',
      '--name',
      'promweb',
      '--replicas',
      String(REPLICAS),
      // One per node, so that a replica runs on the labelled node.
      '--replicas-max-per-node',
      '1',
      '--label',
      'com.example.team=edge',
      '--container-label',
      'com.example.role=httpd',
      '--publish',
      `${PUBLISHED}:80`,
      '--publish',
      `mode=host,published=${HOST_PORT},target=${HOST_PORT}`,
      '--network',
      'backend',
      '--update-monitor',
      '1s',
      '--no-resolve-image',
      SANDBOX_IMAGE,
      'sleep',
      '1d',
    );
    // On the same network, without the label the tasks job filters on: its service is discovered, its task is not.
    await docker(
      m,
      'service',
      'create',
      '--name',
      'unlabelled',
      '--network',
      'backend',
      '--update-monitor',
      '1s',
      '--no-resolve-image',
      SANDBOX_IMAGE,
      'sleep',
      '1d',
    );

    // What the docker CLI says is running, to hold Prometheus' view against.
    const running = (await docker(m, 'service', 'ps', '--no-trunc', '--filter', 'desired-state=running', '--format', '{{.ID}}', 'promweb'))
      .trim()
      .split('\n');
    expect(running).toHaveLength(REPLICAS);
    const tasks = JSON.parse(await docker(m, 'inspect', '--type', 'task', ...running)) as {
      ID: string;
      NodeID: string;
      Slot: number;
      Status: { ContainerStatus: { ContainerID: string } };
      NetworksAttachments: { Network: { ID: string; Spec: { Name: string } }; Addresses: string[] }[];
    }[];
    const nodes = JSON.parse(await docker(m, 'node', 'inspect', ...hosts.map((h) => h.name))) as {
      ID: string;
      Description: { Hostname: string };
      Status: { Addr: string };
      Spec: { Role: string };
    }[];
    const [svc] = JSON.parse(await docker(m, 'service', 'inspect', 'promweb')) as {
      ID: string;
      Endpoint: { VirtualIPs: { NetworkID: string; Addr: string }[] };
    }[];
    const backendId = (await docker(m, 'network', 'inspect', '--format', '{{.Id}}', 'backend')).trim();
    const hostname = (nodeId: string): string => nodes.find((n) => n.ID === nodeId)!.Description.Hostname;

    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    writeFileSync(join(dir, 'prometheus.yml'), prometheusConfig(hosts[0]!.dockerSocketPath, '2s', LOOPBACK_ONLY));
    const log = openSync(join(dir, 'prometheus.log'), 'a');
    prom = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log); // the child has its own copy
    const child = prom;
    promExit = new Promise((res) => child.once('exit', () => res()));
    const promLog = (): string => readFileSync(join(dir, 'prometheus.log'), 'utf8').split('\n').slice(-30).join('\n');

    const targets = async (): Promise<Target[]> => {
      if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}):\n${promLog()}`);
      const r = await fetch(`${api}/api/v1/targets?state=any`);
      const body = (await r.json()) as { data: { activeTargets: Target[] } };
      return body.data.activeTargets;
    };
    const pool = (all: Target[], name: string): Target[] => all.filter((t) => t.scrapePool === name);

    const all = await until(
      'prometheus lists every replica, the service endpoints and every node',
      async () => {
        const ts = await targets();
        const svcNames = new Set(pool(ts, 'swarm-services').map((t) => t.discoveredLabels.__meta_dockerswarm_service_name));
        return pool(ts, 'swarm-tasks').length >= 2 * REPLICAS &&
          pool(ts, 'swarm-task-host-ports').length >= REPLICAS &&
          svcNames.has('promweb') &&
          svcNames.has('unlabelled') &&
          pool(ts, 'swarm-nodes').length === hosts.length
          ? ts
          : undefined;
      },
      90_000,
      1000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nprometheus log:\n${promLog()}`);
    });

    // tasks: one target per running replica, on its backend address and the published port; none of the unlabelled service.
    const byTask = new Map<string, Target[]>();
    for (const t of pool(all, 'swarm-tasks')) {
      const id = t.discoveredLabels.__meta_dockerswarm_task_id!;
      byTask.set(id, [...(byTask.get(id) ?? []), t]);
    }
    expect([...byTask.keys()].sort()).toEqual([...running].sort());
    for (const task of tasks) {
      const backend = task.NetworksAttachments.find((a) => a.Network.ID === backendId)!;
      expect(backend, `task ${task.ID} has a backend address`).toBeDefined();
      const ip = backend.Addresses[0]!.split('/')[0]!;
      // On the task's backend address, one target per port the service publishes (Prometheus takes the published number).
      const ts = byTask.get(task.ID)!;
      expect(ts.map((t) => t.labels.instance).sort()).toEqual([`${ip}:${PUBLISHED}`, `${ip}:${HOST_PORT}`]);
      for (const t of ts) {
        expect(t.discoveredLabels).toMatchObject({
          __meta_dockerswarm_task_desired_state: 'running',
          __meta_dockerswarm_task_state: 'running',
          __meta_dockerswarm_task_slot: String(task.Slot),
          __meta_dockerswarm_task_container_id: task.Status.ContainerStatus.ContainerID,
          __meta_dockerswarm_task_port_publish_mode: t.labels.instance!.endsWith(`:${PUBLISHED}`) ? 'ingress' : 'host',
          __meta_dockerswarm_service_id: svc!.ID,
          __meta_dockerswarm_service_name: 'promweb',
          __meta_dockerswarm_service_mode: 'replicated',
          __meta_dockerswarm_service_label_com_example_team: 'edge',
          __meta_dockerswarm_container_label_com_example_role: 'httpd',
          __meta_dockerswarm_node_id: task.NodeID,
          __meta_dockerswarm_node_hostname: hostname(task.NodeID),
          __meta_dockerswarm_network_id: backendId,
          __meta_dockerswarm_network_name: 'backend',
          __meta_dockerswarm_network_scope: 'swarm',
          __meta_dockerswarm_network_ingress: 'false',
          __meta_dockerswarm_network_label_purpose: 'metrics',
        });
        expect(t.labels).toMatchObject({
          job: 'swarm-tasks',
          service: 'promweb',
          slot: String(task.Slot),
          node: hostname(task.NodeID),
          team: 'edge',
        });
      }
      expect(task.Status.ContainerStatus.ContainerID).not.toBe('');
    }
    // The host-mode port: one target per task at its node's address (from the task's PortStatus).
    const hostPorts = pool(all, 'swarm-task-host-ports').filter((t) => t.discoveredLabels.__meta_dockerswarm_service_name === 'promweb');
    expect(hostPorts.map((t) => t.discoveredLabels.__meta_dockerswarm_task_id).sort()).toEqual([...running].sort());
    for (const task of tasks) {
      const t = hostPorts.find((x) => x.discoveredLabels.__meta_dockerswarm_task_id === task.ID)!;
      const node = nodes.find((n) => n.ID === task.NodeID)!;
      expect(t.labels).toMatchObject({ instance: `${node.Status.Addr}:${HOST_PORT}`, service: 'promweb', node: hostname(task.NodeID) });
      expect(t.discoveredLabels).toMatchObject({
        __meta_dockerswarm_task_port_publish_mode: 'host',
        __meta_dockerswarm_node_address: node.Status.Addr,
      });
    }
    // One replica per node, and the labelled node's labels came along with the one on it.
    expect(new Set(tasks.map((t) => t.NodeID)).size).toBe(hosts.length);
    const onZoned = pool(all, 'swarm-tasks').find((t) => t.discoveredLabels.__meta_dockerswarm_node_hostname === hosts[1]!.name)!;
    expect(onZoned.discoveredLabels.__meta_dockerswarm_node_label_zone).toBe('a');

    // services: one target per VIP (backend and ingress) and published port.
    const services = pool(all, 'swarm-services').filter((t) => t.discoveredLabels.__meta_dockerswarm_service_name === 'promweb');
    expect(services.map((t) => t.labels.instance).sort()).toEqual(
      svc!.Endpoint.VirtualIPs.flatMap((v) => [PUBLISHED, HOST_PORT].map((p) => `${v.Addr.split('/')[0]}:${p}`)).sort(),
    );
    for (const t of services) {
      expect(t.discoveredLabels).toMatchObject({
        __meta_dockerswarm_service_id: svc!.ID,
        __meta_dockerswarm_service_name: 'promweb',
        __meta_dockerswarm_service_mode: 'replicated',
        __meta_dockerswarm_service_endpoint_port_publish_mode: t.labels.instance!.endsWith(`:${PUBLISHED}`) ? 'ingress' : 'host',
        __meta_dockerswarm_service_label_com_example_team: 'edge',
        __meta_dockerswarm_service_task_container_image: SANDBOX_IMAGE,
      });
      expect(t.labels.service).toBe('promweb');
    }
    expect(services.map((t) => t.discoveredLabels.__meta_dockerswarm_network_name).sort()).toEqual([
      'backend',
      'backend',
      'ingress',
      'ingress',
    ]);

    // nodes: every node, at its address and the configured port.
    const nodeTargets = pool(all, 'swarm-nodes');
    expect(nodeTargets.map((t) => t.discoveredLabels.__meta_dockerswarm_node_id).sort()).toEqual(nodes.map((n) => n.ID).sort());
    for (const n of nodes) {
      const t = nodeTargets.find((x) => x.discoveredLabels.__meta_dockerswarm_node_id === n.ID)!;
      expect(t.discoveredLabels).toMatchObject({
        __meta_dockerswarm_node_hostname: n.Description.Hostname,
        __meta_dockerswarm_node_role: n.Spec.Role,
        __meta_dockerswarm_node_status: 'ready',
        __meta_dockerswarm_node_availability: 'active',
        __meta_dockerswarm_node_platform_os: 'linux',
      });
      expect(t.labels).toMatchObject({
        job: 'swarm-nodes',
        instance: `${n.Status.Addr}:${NODE_PORT}`,
        node: n.Description.Hostname,
        role: n.Spec.Role,
      });
    }
    const manager = nodeTargets.find((t) => t.discoveredLabels.__meta_dockerswarm_node_role === 'manager')!;
    expect(manager.discoveredLabels.__meta_dockerswarm_node_manager_leader).toBe('true');
    expect(manager.discoveredLabels.__meta_dockerswarm_node_manager_reachability).toBe('reachable');
    expect(nodeTargets.find((t) => t.discoveredLabels.__meta_dockerswarm_node_hostname === hosts[1]!.name)!.discoveredLabels).toMatchObject(
      {
        __meta_dockerswarm_node_label_zone: 'a',
      },
    );
  }, 300_000);
});
