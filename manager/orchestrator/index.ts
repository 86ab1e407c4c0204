// What the leader runs to turn services into placed tasks: the orchestrator
// (replicated, global, restarts, rolling updates, reaper), the allocator and
// the scheduler. Started when this manager becomes the leader, stopped when it
// loses the leadership; each rebuilds its state from the store when it starts.
import type pino from 'pino';
import { Allocator } from '../allocator/index.js';
import { Scheduler } from '../scheduler/index.js';
import type { MemoryStore } from '../store/index.js';
import { type Clock, systemClock } from './context.js';
import { Orchestrator } from './orchestrator.js';

export { type Clock, DEFAULT_HISTORY, isCurrent, isTerminal, systemClock } from './context.js';
export { CREATE_CHUNK, Orchestrator, type OrchestratorOptions } from './orchestrator.js';
export { DEFAULT_RESTART_DELAY_MS, ORPHAN_AFTER_MS, replaceReason, restartDelay, shouldRestart } from './restart.js';
export { reapable, removable } from './reaper.js';
export { eligibleNode } from './global.js';

export interface Orchestration {
  orchestrator: Orchestrator;
  allocator: Allocator;
  scheduler: Scheduler;
  /** Resolves when no pass of any part is running or due (tests, benchmarks). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export interface OrchestrationOptions {
  store: MemoryStore;
  logger: pino.Logger;
  clock?: Clock;
}

export function startOrchestration(o: OrchestrationOptions): Orchestration {
  const clock = o.clock ?? systemClock;
  const orchestrator = new Orchestrator({ ...o, clock });
  const allocator = new Allocator({ ...o, clock });
  const scheduler = new Scheduler({ ...o, clock });
  orchestrator.start();
  allocator.start();
  scheduler.start();
  return {
    orchestrator,
    allocator,
    scheduler,
    async idle() {
      // Each part's writes kick the others: settle until none has a pass running or due.
      do {
        await orchestrator.idle();
        await allocator.idle();
        await scheduler.idle();
      } while (orchestrator.due || allocator.due || scheduler.due);
    },
    async stop() {
      await orchestrator.stop();
      await allocator.stop();
      await scheduler.stop();
    },
  };
}
