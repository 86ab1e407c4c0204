// The JSON shapes of Docker's Engine API for services and tasks, as tsswarm
// writes them (moby api/types/swarm): the answer side. Requests are read as
// parsed JSON with spec/docker/values.ts, since a client may send anything.
// Field names are Docker's; absent means Go's `omitempty` left it out.

export type DockerLabels = Record<string, string>;

export interface DockerVersion {
  Index: number;
}

export interface DockerPortConfig {
  Name?: string;
  Protocol?: 'tcp' | 'udp' | 'sctp';
  TargetPort?: number;
  PublishedPort?: number;
  PublishMode?: 'ingress' | 'host';
}

export interface DockerEndpointSpec {
  Mode?: 'vip' | 'dnsrr';
  Ports?: DockerPortConfig[];
}

export interface DockerNetworkAttachmentConfig {
  Target: string;
  Aliases?: string[];
}

export interface DockerFileTarget {
  Name: string;
  UID: string;
  GID: string;
  /** os.FileMode as a decimal number: 292 is 0444. */
  Mode: number;
}

export interface DockerSecretReference {
  File: DockerFileTarget | null;
  SecretID: string;
  SecretName: string;
}

export interface DockerConfigReference {
  File?: DockerFileTarget;
  ConfigID: string;
  ConfigName: string;
}

export interface DockerMount {
  Type: 'bind' | 'volume' | 'tmpfs';
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  VolumeOptions?: { Labels?: DockerLabels };
}

export interface DockerHealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface DockerPrivileges {
  CredentialSpec: null;
  SELinuxContext: null;
  Seccomp?: { Mode: 'default' | 'unconfined' };
  NoNewPrivileges: boolean;
}

export interface DockerContainerSpec {
  Image?: string;
  Labels?: DockerLabels;
  Command?: string[];
  Args?: string[];
  Hostname?: string;
  Env?: string[];
  Dir?: string;
  User?: string;
  Privileges?: DockerPrivileges;
  Init?: boolean;
  StopSignal?: string;
  TTY?: boolean;
  ReadOnly?: boolean;
  Mounts?: DockerMount[];
  StopGracePeriod?: number;
  Healthcheck?: DockerHealthConfig;
  DNSConfig?: { Nameservers?: string[]; Search?: string[]; Options?: string[] };
  Hosts?: string[];
  Groups?: string[];
  Sysctls?: Record<string, string>;
  Ulimits?: Array<{ Name: string; Soft: number; Hard: number }>;
  OomScoreAdj?: number;
  Secrets?: DockerSecretReference[];
  Configs?: DockerConfigReference[];
  CapabilityAdd?: string[];
  CapabilityDrop?: string[];
}

export interface DockerResources {
  NanoCPUs?: number;
  MemoryBytes?: number;
  GenericResources?: DockerGenericResource[];
}

/** Docker's generic resource; tsswarm has the discrete (count) kind only. */
export interface DockerGenericResource {
  DiscreteResourceSpec?: { Kind: string; Value: number };
}

export interface DockerLimit extends DockerResources {
  Pids?: number;
}

export interface DockerRestartPolicy {
  Condition?: 'none' | 'on-failure' | 'any';
  Delay?: number;
  MaxAttempts?: number;
  Window?: number;
}

export interface DockerPlacement {
  Constraints?: string[];
  Preferences?: Array<{ Spread: { SpreadDescriptor: string } }>;
  MaxReplicas?: number;
  Platforms?: Array<{ Architecture: string; OS: string }>;
}

export interface DockerTaskSpec {
  ContainerSpec: DockerContainerSpec;
  Resources?: { Limits?: DockerLimit; Reservations?: DockerResources };
  RestartPolicy?: DockerRestartPolicy;
  Placement?: DockerPlacement;
  Networks?: DockerNetworkAttachmentConfig[];
  ForceUpdate: number;
  LogDriver?: { Name: string; Options?: Record<string, string> };
  Runtime?: 'container';
}

export interface DockerUpdateConfig {
  Parallelism: number;
  Delay?: number;
  FailureAction?: 'pause' | 'continue' | 'rollback';
  Monitor?: number;
  MaxFailureRatio: number;
  Order: 'stop-first' | 'start-first';
}

export interface DockerServiceMode {
  Replicated?: { Replicas: number };
  Global?: Record<string, never>;
  ReplicatedJob?: { MaxConcurrent: number; TotalCompletions: number };
  GlobalJob?: Record<string, never>;
}

/** A job's iteration (API ≥ 1.41). */
export interface DockerJobStatus {
  JobIteration: DockerVersion;
  LastExecution?: string;
}

export interface DockerServiceSpec {
  Name?: string;
  Labels: DockerLabels;
  TaskTemplate: DockerTaskSpec;
  Mode: DockerServiceMode;
  UpdateConfig?: DockerUpdateConfig;
  RollbackConfig?: DockerUpdateConfig;
  EndpointSpec?: DockerEndpointSpec;
}

export type DockerUpdateState = 'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed';

export interface DockerUpdateStatus {
  State?: DockerUpdateState;
  StartedAt?: string;
  CompletedAt?: string;
  Message?: string;
}

export interface DockerServiceStatus {
  RunningTasks: number;
  DesiredTasks: number;
  CompletedTasks: number;
}

export interface DockerService {
  ID: string;
  Version: DockerVersion;
  CreatedAt: string;
  UpdatedAt: string;
  Spec: DockerServiceSpec;
  PreviousSpec?: DockerServiceSpec;
  Endpoint: {
    Spec: DockerEndpointSpec;
    Ports?: DockerPortConfig[];
    VirtualIPs?: Array<{ NetworkID: string; Addr: string }>;
  };
  UpdateStatus?: DockerUpdateStatus;
  ServiceStatus?: DockerServiceStatus;
  JobStatus?: DockerJobStatus;
}

export type DockerTaskState =
  | 'new'
  | 'allocated'
  | 'pending'
  | 'assigned'
  | 'accepted'
  | 'preparing'
  | 'ready'
  | 'starting'
  | 'running'
  | 'complete'
  | 'shutdown'
  | 'failed'
  | 'rejected'
  | 'remove'
  | 'orphaned';

/** The swarm Network object a task's attachment embeds; the /networks routes build it (at least its ID). */
export interface DockerTaskNetwork {
  ID: string;
  [k: string]: unknown;
}

export interface DockerTask {
  ID: string;
  Version: DockerVersion;
  CreatedAt: string;
  UpdatedAt: string;
  Name?: string;
  Labels: DockerLabels;
  Spec: DockerTaskSpec;
  ServiceID: string;
  Slot?: number;
  NodeID?: string;
  Status: {
    Timestamp: string;
    State: DockerTaskState;
    Message?: string;
    Err?: string;
    ContainerStatus?: { ContainerID: string; PID: number; ExitCode: number };
    PortStatus: { Ports?: DockerPortConfig[] };
  };
  DesiredState: DockerTaskState;
  /** Jobs: the iteration the task was made for. */
  JobIteration?: DockerVersion;
  NetworksAttachments?: Array<{ Network: DockerTaskNetwork; Addresses: string[] }>;
}
