// `tsswarm daemon` from its flags to a running node: the config file and the
// flags merged, the advertise address resolved before anything starts, the
// socket handed to its group, SIGTERM/SIGINT stopping it. The CLI's daemon
// command parses the flags and hands them here (its one import of node/).
import { chmodSync, chownSync, readFileSync, statSync } from 'node:fs';
import { resolveAdvertiseAddr } from '../lib/addr.js';
import { createLogger } from '../lib/log.js';
import { releaseFreeHeap } from '../native/libc.js';
import { Daemon } from './daemon.js';
import { type DaemonFlags, dockerSocketPath, engineLabelMap, groupId, readDaemonConfig, resolveDaemonConfig } from './daemon-config.js';
import { releaseHeapAfterGc } from './heap.js';

export interface RunDaemonInput {
  flags: DaemonFlags & { config?: string };
  /** The socket --host or TSSWARM_HOST named, when either was given: the CLI's and the daemon's alike. */
  socketOverride?: string;
  /** The socket when neither the flags, the config nor socketOverride name one. */
  defaultSocket: string;
  version: string;
}

/** Runs the daemon until SIGTERM or SIGINT, then exits the process. */
export async function runDaemon({ flags, socketOverride, defaultSocket, version }: RunDaemonInput): Promise<number> {
  const cfg = resolveDaemonConfig({ flags, file: flags.config ? readDaemonConfig(flags.config) : undefined, socketOverride });
  if (cfg.advertiseAddr) {
    // A name that does not resolve is refused here, not at join.
    cfg.advertiseAddr = await resolveAdvertiseAddr(
      flags['advertise-addr'] !== undefined || !flags.config ? '--advertise-addr' : `"advertiseAddr" in ${flags.config}`,
      cfg.advertiseAddr,
    );
  }
  const socketGid = cfg.socketGroup
    ? groupId(cfg.socketGroup, readFileSync('/etc/group', 'utf8'), flags.config ? `"socketGroup" in ${flags.config}` : 'socketGroup')
    : undefined;
  const logger = createLogger({ level: cfg.logLevel, base: { host: cfg.nodeName } });
  if (flags.config) logger.info({ config: flags.config }, 'settings read from the config file (flags override it)');
  if (cfg.lbBackend) logger.info({ lbBackend: cfg.lbBackend }, 'load balancer backend chosen');
  const socket = cfg.socket ?? defaultSocket;
  const d = new Daemon({
    nodeName: cfg.nodeName,
    stateDir: cfg.stateDir,
    listenAddr: cfg.listenAddr,
    advertiseAddr: cfg.advertiseAddr,
    socketPath: socket,
    logger,
    heartbeatPeriodMs: cfg.heartbeatPeriodMs,
    metricsAddr: cfg.metricsAddr,
    version,
    // The load balancer's names for its backends; auto: detected on each namespace.
    lbBackend: cfg.lbBackend === 'nftables' ? 'nft' : cfg.lbBackend === 'auto' ? undefined : cfg.lbBackend,
    dockerSocketPath: dockerSocketPath(cfg.dockerSocket, socket),
    dockerSocketGid: socketGid,
    insecureRegistries: cfg.insecureRegistries,
    certsDir: cfg.certsDir,
    engineLabels: engineLabelMap(cfg.labels),
    genericResources: cfg.nodeGenericResources,
    dockerTcpAddr: cfg.dockerTcp || undefined,
  });
  // What the daemon's bursts of work freed goes back to the kernel once the collector goes quiet.
  releaseHeapAfterGc({ release: releaseFreeHeap });
  await d.start();
  if (socketGid !== undefined) {
    // Members of the group may use the CLI without root (they can do anything the daemon can).
    try {
      chownSync(socket, statSync(socket).uid, socketGid);
      chmodSync(socket, 0o660);
    } catch (err) {
      logger.error({ err, socket, group: cfg.socketGroup }, 'cannot give the socket to its group: only root can use it');
    }
  }
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      logger.info('stopping');
      // Exit as soon as the daemon is down: container steps still in flight (a stop waiting out
      // its grace period) are abandoned on purpose; the containers stay, and the next daemon
      // compares them with the managers' orders again.
      void d.stop().finally(() => {
        resolve();
        process.exit(0);
      });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}
