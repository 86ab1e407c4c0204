// Placement constraints and preferences as the Control API accepts them:
// `node.role==worker`, `node.labels.zone!=east`, `spread=node.labels.zone`.
// One parser for the whole manager: the scheduler's, which also matches them,
// so validation can never accept what placement does not understand.
export { type Constraint, type ConstraintOp, parseConstraint, parseConstraints, parseSpreadPreference } from '../scheduler/index.js';
