// The Docker Engine API shapes the compose conversion emits: exactly the JSON
// `docker stack deploy` sends (Go's field names; a field Go omits when empty
// is optional here and left out). Declared here, not taken from proto/: these
// are Docker's wire objects, which spec/docker/ converts into ours.

export type Labels = Record<string, string>;

export interface DockerDriver {
  Name?: string;
  Options?: Record<string, string>;
}

export interface DockerMount {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Labels; DriverConfig?: DockerDriver };
  TmpfsOptions?: { SizeBytes?: number };
}

export interface DockerFileTarget {
  Name: string;
  UID: string;
  GID: string;
  Mode: number;
}

export interface DockerSecretReference {
  File: DockerFileTarget;
  /** Filled by the caller: the CLI looks the name up (`secret not found: X`). */
  SecretID: string;
  SecretName: string;
}

export interface DockerConfigReference {
  File: DockerFileTarget;
  ConfigID: string;
  ConfigName: string;
}

export interface DockerHealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface DockerContainerSpec {
  Image?: string;
  Labels?: Labels;
  Command?: string[];
  Args?: string[];
  Hostname?: string;
  Env?: string[];
  Dir?: string;
  User?: string;
  Privileges: {
    CredentialSpec: { Config?: string; File?: string; Registry?: string } | null;
    SELinuxContext: null;
    NoNewPrivileges: boolean;
  };
  Init?: boolean;
  StopSignal?: string;
  TTY?: boolean;
  OpenStdin?: boolean;
  ReadOnly?: boolean;
  Mounts?: DockerMount[];
  StopGracePeriod?: number;
  Healthcheck?: DockerHealthConfig;
  Hosts?: string[];
  DNSConfig?: { Nameservers?: string[]; Search?: string[] };
  Secrets?: DockerSecretReference[];
  Configs?: DockerConfigReference[];
  Isolation?: string;
  Sysctls?: Record<string, string>;
  CapabilityAdd?: string[];
  CapabilityDrop?: string[];
  Ulimits?: { Name: string; Hard: number; Soft: number }[];
}

export interface DockerUpdateConfig {
  Parallelism: number;
  Delay?: number;
  FailureAction?: string;
  Monitor?: number;
  MaxFailureRatio: number;
  Order: string;
}

export interface DockerPortConfig {
  Protocol?: string;
  TargetPort?: number;
  PublishedPort?: number;
  PublishMode?: string;
}

export interface DockerServiceSpec {
  Name: string;
  Labels: Labels;
  TaskTemplate: {
    ContainerSpec: DockerContainerSpec;
    Resources: {
      Limits?: { NanoCPUs?: number; MemoryBytes?: number; Pids?: number };
      Reservations?: {
        NanoCPUs?: number;
        MemoryBytes?: number;
        GenericResources?: { DiscreteResourceSpec: { Kind: string; Value: number } }[];
      };
    };
    RestartPolicy?: { Condition?: string; Delay?: number; MaxAttempts?: number; Window?: number };
    Placement: {
      Constraints?: string[];
      Preferences?: { Spread: { SpreadDescriptor: string } }[];
      MaxReplicas?: number;
    };
    Networks?: { Target: string; Aliases?: string[]; DriverOpts?: Record<string, string> }[];
    LogDriver?: DockerDriver;
    ForceUpdate: number;
  };
  Mode:
    | { Replicated: { Replicas?: number } }
    | { Global: Record<string, never> }
    | { ReplicatedJob: { MaxConcurrent?: number; TotalCompletions?: number } }
    | { GlobalJob: Record<string, never> };
  UpdateConfig?: DockerUpdateConfig;
  RollbackConfig?: DockerUpdateConfig;
  EndpointSpec: { Mode?: string; Ports?: DockerPortConfig[] };
}

/** POST /networks/create. */
export interface DockerNetworkCreate {
  Name: string;
  Driver: string;
  Scope: string;
  IPAM: { Driver: string; Options: null; Config: { Subnet?: string }[] | null } | null;
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigOnly: boolean;
  ConfigFrom: null;
  Options: Record<string, string> | null;
  Labels: Labels;
}

/** POST /secrets/create and /configs/create (Data is base64, as Go encodes []byte). */
export interface DockerSecretSpec {
  Name: string;
  Labels: Labels;
  Data?: string;
  Driver?: DockerDriver;
  Templating?: DockerDriver;
}
export type DockerConfigSpec = Omit<DockerSecretSpec, 'Driver'>;

export interface ComposeStack {
  /** The stack's name: every object carries it in `com.docker.stack.namespace`. */
  namespace: string;
  /** Networks to create if no network of the stack has the name yet, by name. */
  networks: DockerNetworkCreate[];
  /** External networks the services use: each must exist, swarm-scoped. */
  externalNetworks: string[];
  secrets: DockerSecretSpec[];
  configs: DockerConfigSpec[];
  /** One per service, sorted by name. */
  services: DockerServiceSpec[];
  /** Docker's stderr warnings, each a complete text (the CLI prints them as they are). */
  warnings: string[];
}
