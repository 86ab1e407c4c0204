// Membership changes as pure transformations of a tracker configuration:
// simple changes (at most one voter differs), entering and leaving a joint
// configuration, and rebuilding a configuration from a ConfState.
import { type ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType, type ConfState } from '../../proto/gen/raft.js';
import { RaftError } from './errors.js';
import { Progress, type ProgressMap, type ProgressTracker, type TrackerConfig, cloneConfig, emptyConfig } from './tracker.js';

export class ConfChangeError extends RaftError {
  constructor(message: string) {
    super('CONF_CHANGE_INVALID', message);
  }
}

export interface ChangeResult {
  config: TrackerConfig;
  progress: ProgressMap;
}

/** Whether a change needs joint consensus, and whether it leaves the joint config by itself. */
export function enterJointOf(cc: ConfChange): { joint: boolean; autoLeave: boolean } {
  if (cc.transition !== ConfChangeTransition.TRANSITION_AUTO || cc.changes.length > 1) {
    return { joint: true, autoLeave: cc.transition !== ConfChangeTransition.TRANSITION_JOINT_EXPLICIT };
  }
  return { joint: false, autoLeave: false };
}

export function leavesJoint(cc: ConfChange): boolean {
  return cc.changes.length === 0;
}

/** Applies changes to a copy of the tracker's configuration; the tracker itself is untouched. */
export class Changer {
  constructor(
    private readonly trk: Pick<ProgressTracker, 'config' | 'progress' | 'maxInflight' | 'maxInflightBytes'>,
    private readonly lastIndex: number,
  ) {}

  enterJoint(autoLeave: boolean, ccs: ConfChangeSingle[]): ChangeResult {
    const { config, progress } = this.copy();
    if (config.voters[1].size > 0) throw new ConfChangeError('configuration is already joint');
    if (config.voters[0].size === 0) throw new ConfChangeError("can't make a zero-voter configuration joint");
    config.voters[1] = new Set(config.voters[0]);
    this.apply(config, progress, ccs);
    config.autoLeave = autoLeave;
    this.check(config, progress);
    return { config, progress };
  }

  leaveJoint(): ChangeResult {
    const { config, progress } = this.copy();
    if (config.voters[1].size === 0) throw new ConfChangeError(`can't leave a non-joint configuration`);
    for (const id of config.learnersNext) {
      config.learners.add(id);
      progress.get(id)!.isLearner = true;
    }
    config.learnersNext.clear();
    for (const id of config.voters[1]) {
      if (!config.voters[0].has(id) && !config.learners.has(id)) progress.delete(id);
    }
    config.voters[1] = new Set();
    config.autoLeave = false;
    this.check(config, progress);
    return { config, progress };
  }

  simple(ccs: ConfChangeSingle[]): ChangeResult {
    const { config, progress } = this.copy();
    if (config.voters[1].size > 0) throw new ConfChangeError("can't apply a simple change to a joint configuration; leave it first");
    const before = new Set(config.voters[0]);
    this.apply(config, progress, ccs);
    let diff = 0;
    for (const id of before) if (!config.voters[0].has(id)) diff++;
    for (const id of config.voters[0]) if (!before.has(id)) diff++;
    if (diff > 1) throw new ConfChangeError('more than one voter changed without entering a joint configuration');
    this.check(config, progress);
    return { config, progress };
  }

  private copy(): ChangeResult {
    const config = cloneConfig(this.trk.config);
    const progress: ProgressMap = new Map();
    // Shallow copies: a change flips isLearner but keeps match/next and the inflight window, and a
    // change that fails validation must leave the tracker's own objects untouched.
    for (const [id, pr] of this.trk.progress) progress.set(id, Object.assign(Object.create(Progress.prototype) as Progress, pr));
    return { config, progress };
  }

  private apply(config: TrackerConfig, progress: ProgressMap, ccs: ConfChangeSingle[]): void {
    for (const cc of ccs) {
      if (cc.nodeId === '') continue; // etcd's convention: a change naming no node is a no-op
      switch (cc.type) {
        case ConfChangeType.CONF_ADD_NODE:
          this.makeVoter(config, progress, cc.nodeId);
          break;
        case ConfChangeType.CONF_ADD_LEARNER_NODE:
          this.makeLearner(config, progress, cc.nodeId);
          break;
        case ConfChangeType.CONF_REMOVE_NODE:
          this.remove(config, progress, cc.nodeId);
          break;
        default:
          throw new ConfChangeError(`unknown conf change type ${String(cc.type)}`);
      }
    }
    if (config.voters[0].size === 0) throw new ConfChangeError('removed all voters');
  }

  private makeVoter(config: TrackerConfig, progress: ProgressMap, id: string): void {
    const pr = progress.get(id);
    if (!pr) {
      this.initProgress(config, progress, id, false);
      return;
    }
    pr.isLearner = false;
    config.learners.delete(id);
    config.learnersNext.delete(id);
    config.voters[0].add(id);
  }

  private makeLearner(config: TrackerConfig, progress: ProgressMap, id: string): void {
    const pr = progress.get(id);
    if (!pr) {
      this.initProgress(config, progress, id, true);
      return;
    }
    if (pr.isLearner) return;
    this.remove(config, progress, id);
    progress.set(id, pr);
    // A voter of the outgoing config can't be a learner until the joint config is left: it
    // would be both voter and learner. It is staged in learnersNext until then.
    if (config.voters[1].has(id)) {
      config.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      config.learners.add(id);
    }
  }

  private remove(config: TrackerConfig, progress: ProgressMap, id: string): void {
    if (!progress.has(id)) return;
    config.voters[0].delete(id);
    config.learners.delete(id);
    config.learnersNext.delete(id);
    // Still a voter of the outgoing config: keep its progress until the joint config is left.
    if (!config.voters[1].has(id)) progress.delete(id);
  }

  private initProgress(config: TrackerConfig, progress: ProgressMap, id: string, isLearner: boolean): void {
    if (isLearner) config.learners.add(id);
    else config.voters[0].add(id);
    const pr = new Progress(Math.max(this.lastIndex, 1), isLearner, this.trk.maxInflight, this.trk.maxInflightBytes);
    // Counted as active so that CheckQuorum does not depose the leader the moment a member is added.
    pr.recentActive = true;
    progress.set(id, pr);
  }

  private check(config: TrackerConfig, progress: ProgressMap): void {
    for (const id of [...config.voters[0], ...config.voters[1], ...config.learners, ...config.learnersNext]) {
      if (!progress.has(id)) throw new ConfChangeError(`no progress for ${id}`);
    }
    for (const id of config.learnersNext) {
      if (!config.voters[1].has(id)) throw new ConfChangeError(`${id} is in learners_next but not an outgoing voter`);
      if (progress.get(id)!.isLearner) throw new ConfChangeError(`${id} is in learners_next but already a learner`);
    }
    for (const id of config.learners) {
      if (config.voters[0].has(id) || config.voters[1].has(id)) throw new ConfChangeError(`${id} is both learner and voter`);
      if (!progress.get(id)!.isLearner) throw new ConfChangeError(`${id} is a learner whose progress says voter`);
    }
    if (config.voters[1].size === 0 && config.autoLeave) throw new ConfChangeError('autoLeave set outside a joint configuration');
  }
}

/**
 * Why `cc` could not be applied to the tracker's current configuration, or
 * null if it could. The leader runs this before proposing: an invalid change
 * committed to the log would fail on every replica when applied.
 */
export function confChangeError(
  trk: Pick<ProgressTracker, 'config' | 'progress' | 'maxInflight' | 'maxInflightBytes'>,
  lastIndex: number,
  cc: ConfChange,
): ConfChangeError | null {
  const changer = new Changer(trk, lastIndex);
  try {
    if (leavesJoint(cc)) changer.leaveJoint();
    else {
      const { joint, autoLeave } = enterJointOf(cc);
      if (joint) changer.enterJoint(autoLeave, cc.changes);
      else changer.simple(cc.changes);
    }
    return null;
  } catch (e) {
    if (e instanceof ConfChangeError) return e;
    throw e;
  }
}

/** Rebuilds configuration and progress from a ConfState (on start or snapshot restore). */
export function restoreConfig(
  trk: Pick<ProgressTracker, 'maxInflight' | 'maxInflightBytes'>,
  cs: ConfState,
  lastIndex: number,
): ChangeResult {
  let cur: ChangeResult = { config: emptyConfig(), progress: new Map() };
  const step = (f: (c: Changer) => ChangeResult): void => {
    cur = f(new Changer({ ...cur, maxInflight: trk.maxInflight, maxInflightBytes: trk.maxInflightBytes }, lastIndex));
  };
  const add = (type: ConfChangeType, nodeId: string): ConfChangeSingle => ConfChangeSingle.create({ type, nodeId });
  if (cs.votersOutgoing.length === 0) {
    // No joint state: add voters and learners one at a time.
    for (const id of cs.voters) step((c) => c.simple([add(ConfChangeType.CONF_ADD_NODE, id)]));
    for (const id of cs.learners) step((c) => c.simple([add(ConfChangeType.CONF_ADD_LEARNER_NODE, id)]));
    return cur;
  }
  // Build the outgoing config first, then enter the joint state that turns it into the incoming one.
  for (const id of cs.votersOutgoing) step((c) => c.simple([add(ConfChangeType.CONF_ADD_NODE, id)]));
  const incoming: ConfChangeSingle[] = [
    ...cs.votersOutgoing.map((id) => add(ConfChangeType.CONF_REMOVE_NODE, id)),
    ...cs.voters.map((id) => add(ConfChangeType.CONF_ADD_NODE, id)),
    ...cs.learners.map((id) => add(ConfChangeType.CONF_ADD_LEARNER_NODE, id)),
    ...cs.learnersNext.map((id) => add(ConfChangeType.CONF_ADD_LEARNER_NODE, id)),
  ];
  step((c) => c.enterJoint(cs.autoLeave, incoming));
  return cur;
}
