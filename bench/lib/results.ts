import type { ColdResult } from '../scenarios/coldstart.js';
import type { ConnectionsResult } from '../scenarios/connections.js';
import type { FanoutResult } from '../scenarios/fanout.js';
import type { OpsResult } from '../scenarios/ops.js';
import type { ReadsResult } from '../scenarios/reads.js';
import type { SentResult } from '../scenarios/sent.js';
import type { TypingResult } from '../scenarios/typing.js';
import type { Machine } from './machine.js';

export interface Target {
  name: string;
  target: string;
  measured: string;
  met: boolean | undefined;
  /** The same figure with the what-if variant(s) measured in this run, when there is one. */
  withPrototype?: string;
}

export interface BenchResults {
  date: string;
  quick: boolean;
  wallSeconds: number;
  machine: Machine;
  setup: {
    clients: string;
    services: string;
    window: number;
    fanoutThreshold: number | undefined;
    memoryMb: number | undefined;
  };
  fanout?: FanoutResult;
  typing?: TypingResult;
  cold?: ColdResult;
  sent?: SentResult;
  ops?: OpsResult;
  connections?: ConnectionsResult;
  reads?: ReadsResult;
  errors: { scenario: string; message: string }[];
  targets: Target[];
}
