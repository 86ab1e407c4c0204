// Places PENDING tasks on nodes: a pure core (schedule.ts), constraint parsing
// and matching (constraint.ts, also the control API's validation), and the
// shell that feeds the core from the store and writes its decisions in batches.
export {
  type Constraint,
  type ConstraintOp,
  matchConstraint,
  parseConstraint,
  parseConstraints,
  parseSpreadPreference,
} from './constraint.js';
export { explainUnschedulable, holdsNode, NOT_AVAILABLE, schedule, type ScheduleResult } from './schedule.js';
export { SCHEDULE_CHUNK, Scheduler, type SchedulerOptions } from './scheduler.js';
