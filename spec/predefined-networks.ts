// The network names Docker predefines on every node (`none`, `host`,
// `bridge`), as a service spec may name them. `none` is stored as it is
// given (an attachment whose target is "none", never resolved to a network
// object): its tasks get loopback only. `host` and `bridge` are refused with
// the reason. Pure.
import type { NetworkAttachmentConfig, TaskSpec } from '../proto/gen/objects.js';

/** The target of the attachment that asks for loopback only. */
export const NO_NETWORK = 'none';

/** Names `network create` refuses, as Docker does (they name the node's own networks). */
export const PREDEFINED_NETWORK_NAMES = ['none', 'host', 'bridge'] as const;

/** Whether an attachment's target is `none` (any case, as network names are compared). */
export const isNoNetwork = (target: string): boolean => target.toLowerCase() === NO_NETWORK;

/** Whether a task spec asks for loopback only (`--network none`). */
export const onNoNetwork = (task: Pick<TaskSpec, 'networks'> | null | undefined): boolean =>
  (task?.networks ?? []).some((a) => isNoNetwork(a.target));

/** The attachments that name cluster networks (every one but `none`). */
export const clusterAttachments = (task: Pick<TaskSpec, 'networks'> | null | undefined): NetworkAttachmentConfig[] =>
  (task?.networks ?? []).filter((a) => !isNoNetwork(a.target));

/** Why `--network NAME` is refused for a predefined name other than none; undefined for any other name. */
export function refusedPredefined(target: string): string | undefined {
  switch (target.toLowerCase()) {
    case 'host':
      return "tsswarm does not run tasks in their node's network namespace: publish the ports the service serves with --publish mode=host (the task then sees its clients' addresses), or attach an overlay network";
    case 'bridge':
      return "a service with no --network is already on its node's default bridge (NAT egress, as Docker's bridge network): leave --network out";
    default:
      return undefined;
  }
}
