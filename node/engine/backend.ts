// What the engine's routes may ask of the daemon: its Control handlers (which
// forward to the leader), its own verbs (init, join, leave, unlock), and the
// facts only it has. The Daemon implements this; tests give a fake.
import type { ContainerState } from '../../agent/runtime/types.js';
import type {
  ControlHandlers,
  ImageSummary,
  InfoResponse,
  InitRequest,
  InitResponse,
  JoinRequest,
  JoinResponse,
} from '../../proto/gen/control.js';
import type { DockerEvent } from '../../spec/docker/events.js';
import type { Network } from '../../proto/gen/objects.js';
import type { DockerRegistryAuth } from '../../spec/docker/distribution.js';
import type { ContainerDetail, VolumeView } from '../../spec/docker/local.js';
import type { DockerTLSInfo } from '../../spec/docker/node.js';
import type { EngineHost } from '../../spec/docker/system.js';

export interface EngineBackend {
  /** This node's own view, answered at once without asking the leader (ping's header, the 503 checks). */
  localInfo(): InfoResponse;
  /** localInfo() with the leader's view of the managers and the node count (what `tsswarm info` shows). */
  info(): Promise<InfoResponse>;
  /** The Control API of this node's manager, forwarding to the leader; throws on a worker or outside a cluster. */
  control(): ControlHandlers;
  /** The daemon's own verbs, serialized with the CLI's. */
  init(req: InitRequest): Promise<InitResponse>;
  join(req: JoinRequest): Promise<JoinResponse>;
  leave(force: boolean): Promise<void>;
  unlock(key: string): Promise<void>;
  /** The host and build facts of `/info` and `/version`. */
  host(): EngineHost;
  /** The root CA as Docker shows it ('' fields outside a cluster). */
  tlsInfo(): DockerTLSInfo;
  /** Creation and last update of the cluster object in this manager's store (0 when unknown). */
  clusterTimes(): { createdAt: number; updatedAt: number };
  /** The managers a worker knows of (its last session's list). */
  managerAddrs(): string[];
  /** The swarm events this daemon's manager has seen and will see (`GET /events`; node/engine/events.ts). */
  swarmEvents(): SwarmEventSource;
  /** This node's images (throws when its container runtime is not usable). */
  images(): ImageSummary[];
  /** This node's task containers, running or not (throws when its container runtime is not usable). */
  containers(): Promise<LocalContainer[]>;
  /** What container inspect shows of one of them besides its state: its task, image and network names. */
  containerDetail(c: LocalContainer): ContainerDetail;
  /** This node's named volumes. */
  volumes(): VolumeView[];
  /** The networks this node holds for its tasks (what a worker lists). */
  localNetworks(): Network[];
  /** The manifest a reference names on its registry, as `GET /distribution/{name}/json` answers (credentials never logged). */
  distribution(ref: string, auth: DockerRegistryAuth | undefined, signal: AbortSignal): Promise<unknown>;
  /** `POST /auth`: checks credentials against a registry (HOST[:PORT]) as `tsswarm login` does; stores nothing. */
  registryLogin(registry: string, auth: DockerRegistryAuth, signal: AbortSignal): Promise<void>;
}

/** A container of this node as the runtime reports it (one shape: agent/runtime's). */
export type LocalContainer = ContainerState;

/** Where `GET /events` subscribes: recent events replayed, then each new one as it happens. */
export interface SwarmEventSource {
  /**
   * The recent events in the window that `include` keeps (spec/docker/events.ts
   * replayEvents), then `push` for each new one it keeps, until close(), or
   * `end` when the source can no longer vouch for the stream (the store was
   * replaced by a snapshot, the node stopped being a manager).
   */
  subscribe(
    window: { since?: bigint; until?: bigint },
    include: (e: DockerEvent) => boolean,
    sub: { push(e: DockerEvent, line: string): void; end(): void },
  ): { buffered: DockerEvent[]; close(): void };
}
