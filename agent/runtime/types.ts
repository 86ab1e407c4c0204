// Shapes the runtime takes and gives: what to run, what is running.
import type { LogPolicy } from '../../spec/log-driver.js';

export type { LogPolicy };

export interface MountConfig {
  type: 'bind' | 'volume' | 'tmpfs';
  /** A volume's name; '' for an anonymous volume: a new one made for the container and removed with it. */
  source: string;
  target: string;
  readOnly?: boolean;
  /** A new volume is not filled with the image's content at its target (docker's volume-nocopy). */
  noCopy?: boolean;
}

/**
 * A secret's or config's file: written to a tmpfs of its own under the
 * container's directory, never to disk, and bind-mounted read-only at
 * `target` (agent/runtime/files.ts). The value is never logged.
 */
export interface ContainerFile {
  /** Absolute path in the container (`/run/secrets/<name>` for a secret with a relative target). */
  target: string;
  data: Uint8Array;
  uid: number;
  gid: number;
  /** Permission bits (0444 by default). */
  mode: number;
}

export interface ContainerConfig {
  /** Must start with `tss`. */
  id: string;
  /** An image reference in this node's image store. */
  image: string;
  /** Replaces the image's entrypoint when non-empty. */
  command?: string[];
  /** Replaces the image's cmd when non-empty. */
  args?: string[];
  /** KEY=VALUE, over the image's env. */
  env?: string[];
  workdir?: string;
  /** `uid`, `uid:gid`, or a name from the image's /etc/passwd. */
  user?: string;
  hostname?: string;
  mounts?: MountConfig[];
  limits?: { nanoCpus?: number; memoryBytes?: number; pids?: number };
  labels?: Record<string, string>;
  /** Join this network namespace; default: a new one with loopback only. */
  netnsPath?: string;
  /** The container's /etc/resolv.conf; default: the host's (a container on overlay networks gets the embedded DNS server's). */
  resolvConf?: string;
  readOnly?: boolean;
  /**
   * Run the command under an init (tini, as Docker's --init): it is PID 1,
   * forwards signals to the command and reaps zombies. The runtime refuses
   * the container when the node has no tini.
   */
  init?: boolean;
  /**
   * Run the process on a pseudo-terminal (Docker's -t): stdin, stdout and stderr are the pty
   * (stdin with no input, as -t without -i), TERM=xterm, and its output is logged as stdout
   * with the terminal's CRLF line ends, as Docker's logs of such a container.
   */
  tty?: boolean;
  /** The signal `stop` sends when the caller names none (an image's STOPSIGNAL); SIGTERM by default. */
  stopSignal?: string;
  /** Capabilities added to Docker's default set (`NET_ADMIN`, `CAP_NET_ADMIN` or `ALL`). */
  capAdd?: string[];
  /** Capabilities dropped from it (`ALL`: keep only those in capAdd). */
  capDrop?: string[];
  /** `unconfined`: no seccomp filter; default: our default profile (agent/runtime/seccomp/). */
  seccomp?: 'default' | 'unconfined';
  /** The process and its children cannot gain privileges (setuid bits and file capabilities are ignored). */
  noNewPrivileges?: boolean;
  /** Secrets and configs, mounted read-only from a per-container tmpfs. */
  files?: ContainerFile[];
  /** What is kept of its output (spec/log-driver.ts's logPolicy); default: rotated files with the bounded default. */
  log?: LogPolicy;
  /** Namespaced kernel parameters (OCI linux.sysctl); spec/container-options.ts says which. */
  sysctls?: Record<string, string>;
  /** Process limits by Docker's names (`nofile`); -1: unlimited. */
  ulimits?: { name: string; soft: number; hard: number }[];
  /** Supplementary groups: names in the image's /etc/group, or gids. */
  groups?: string[];
  oomScoreAdj?: number;
  /** Extra /etc/hosts lines, `IP NAME [ALIAS...]`. */
  extraHosts?: string[];
  /**
   * --dns, --dns-search, --dns-option: the search and options replace
   * resolv.conf's; the nameservers replace its nameservers, except the
   * embedded server's (127.0.0.11), which stays and forwards to them.
   */
  dns?: { nameservers: string[]; search: string[]; options: string[] };
}

export interface ContainerState {
  id: string;
  status: 'created' | 'running' | 'stopped' | 'unknown';
  pid: number;
  exitCode?: number;
  /** Unix ms. */
  startedAt?: number;
  /** Unix ms, when stopped (the time conmon recorded the exit). */
  finishedAt?: number;
  labels: Record<string, string>;
  image: string;
}

export interface LogLine {
  stream: 'stdout' | 'stderr';
  /** Unix ms. */
  time: number;
  /** Newline-terminated. */
  line: Buffer;
}

export interface ExecHandle {
  stdout: NodeJS.ReadableStream;
  stderr: NodeJS.ReadableStream;
  exit: Promise<number>;
  kill(signal?: string): void;
}
