// k6 options built from the ULT_* environment variables (see lib/env.js and k6/README.md).
//
// - One `constant-arrival-rate` scenario per journey, timeUnit 1s, no ramp.
// - ULT_SCENARIO=mixed runs the read journeys (and, with ULT_ADMIN_WRITES_WEIGHT above 0, the
//   administrators' writes) at once and splits ULT_RATE (and the VU budget) between them by
//   ULT_STUDENT_WEIGHT / ULT_TEACHER_WEIGHT / ULT_ADMIN_WRITES_WEIGHT.
// - ULT_SCENARIO=roster_contention is never part of `mixed`: it provokes lost writes on purpose.
// - Thresholds are the contract: p(99) < 1 s and < 1 % failed requests, overall and for every
//   operation the selected journeys send; > 99 % of checks pass; < 1 % GraphQL errors.
//   A threshold on a tag is also what makes k6 report that tag's numbers in its summary
//   (and in --summary-export), so every operation gets its own latency and failure figures.

import { settings } from './env.js';
import { requireRole } from './identities.js';
import { OPERATIONS as STUDENT_LANDING_OPERATIONS, ROLE as STUDENT_ROLE } from '../scenarios/student_landing.js';
import { OPERATIONS as TEACHER_OPERATIONS, ROLE as TEACHER_ROLE } from '../scenarios/teacher.js';
import {
  OPERATIONS as ADMIN_WRITES_OPERATIONS,
  ROLES as ADMIN_WRITES_ROLES,
  usableTeams as adminWritesTeams,
} from '../scenarios/admin_writes.js';
import {
  OPERATIONS as CONTENTION_OPERATIONS,
  ROLES as CONTENTION_ROLES,
  usableTeams as contentionTeams,
} from '../scenarios/roster_contention.js';

// Journeys: scenario name (the k6 `scenario` tag) -> function exported by main.js.
// `weightKey`: the journey's weight in `mixed` (none: never part of `mixed`). `teams`: for a write
// journey, throws (init) unless the identities file has an organization it can write in.
export const JOURNEYS = Object.freeze({
  student_landing: Object.freeze({
    exec: 'studentLanding',
    roles: [STUDENT_ROLE],
    weightKey: 'student',
    operations: STUDENT_LANDING_OPERATIONS,
  }),
  teacher: Object.freeze({ exec: 'teacher', roles: [TEACHER_ROLE], weightKey: 'teacher', operations: TEACHER_OPERATIONS }),
  admin_writes: Object.freeze({
    exec: 'adminWrites',
    roles: ADMIN_WRITES_ROLES,
    weightKey: 'adminWrites',
    operations: ADMIN_WRITES_OPERATIONS,
    teams: adminWritesTeams,
  }),
  roster_contention: Object.freeze({
    exec: 'rosterContention',
    roles: CONTENTION_ROLES,
    weightKey: null,
    operations: CONTENTION_OPERATIONS,
    teams: contentionTeams,
  }),
});

export const LATENCY_THRESHOLD = 'p(99)<1000';
export const FAILED_THRESHOLD = 'rate<0.01';
export const CHECKS_THRESHOLD = 'rate>0.99';
export const GRAPHQL_ERRORS_THRESHOLD = 'rate<0.01';

// Splits `total` into integer parts proportional to `weights` (largest remainder), every
// part with a weight above 0 getting at least `min`.
export function splitByWeight(total, weights, min) {
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (total * w) / sum);
  const parts = exact.map((x) => Math.floor(x));
  let left = total - parts.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0 && k < order.length; k++, left--) parts[order[k][1]] += 1;
  return parts.map((p, i) => (weights[i] > 0 ? Math.max(p, min) : 0));
}

// [{name, journey, share}] for the selected ULT_SCENARIO; share = weight / sum of weights.
export function selectedJourneys(s) {
  if (s.scenario !== 'mixed') return [{ name: s.scenario, journey: JOURNEYS[s.scenario], weight: 1 }];
  return Object.keys(JOURNEYS)
    .filter((name) => JOURNEYS[name].weightKey)
    .map((name) => ({ name, journey: JOURNEYS[name], weight: s.weights[JOURNEYS[name].weightKey] }))
    .filter((j) => j.weight > 0);
}

export function buildScenarios(s) {
  const selected = selectedJourneys(s);
  const weights = selected.map((j) => j.weight);
  const rates = splitByWeight(s.rate, weights, 1);
  const total = rates.reduce((a, b) => a + b, 0);
  if (total !== s.rate) {
    // A small weight's journey still gets 1 iteration/s: the run would go faster than ULT_RATE.
    throw new Error(
      `invalid k6 suite configuration: ULT_SCENARIO=mixed at ULT_RATE=${s.rate} cannot give each of its ` +
        `${rates.length} journeys at least 1 iteration/s by their weights ${weights.join('/')} (it would run ` +
        `${total}/s): raise ULT_RATE or set a weight to 0 (see k6/README.md)`,
    );
  }
  const preAllocated = splitByWeight(s.preAllocatedVUs, weights, 1);
  const max = splitByWeight(s.maxVUs, weights, 1);
  const scenarios = {};
  selected.forEach((j, i) => {
    scenarios[j.name] = {
      executor: 'constant-arrival-rate',
      exec: j.journey.exec,
      rate: rates[i],
      timeUnit: '1s',
      duration: s.duration,
      preAllocatedVUs: preAllocated[i],
      maxVUs: Math.max(max[i], preAllocated[i]),
    };
  });
  return scenarios;
}

export function buildThresholds(s) {
  const latency = [{ threshold: LATENCY_THRESHOLD, abortOnFail: false }];
  const failed = [{ threshold: FAILED_THRESHOLD, abortOnFail: false }];
  const graphqlErrors = [{ threshold: GRAPHQL_ERRORS_THRESHOLD, abortOnFail: false }];
  const thresholds = {
    http_req_duration: latency,
    http_req_failed: failed,
    checks: [{ threshold: CHECKS_THRESHOLD, abortOnFail: false }],
    graphql_errors: graphqlErrors,
  };
  selectedJourneys(s).forEach((j) => {
    j.journey.operations.forEach((operation) => {
      thresholds[`http_req_duration{operation:${operation}}`] = latency;
      thresholds[`http_req_failed{operation:${operation}}`] = failed;
      thresholds[`graphql_errors{operation:${operation}}`] = graphqlErrors;
    });
  });
  return thresholds;
}

export function buildOptions(s) {
  const options = {
    scenarios: buildScenarios(s),
    thresholds: buildThresholds(s),
    // The old test's percentiles (90, 95, 99, 99.99) beside k6's defaults.
    summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'p(99.99)', 'count'],
  };
  if (s.build) options.tags = { build: s.build };
  if (s.scenario === 'roster_contention') {
    // All of a round's adds leave at once: k6 sends at most `batchPerHost` of a batch in parallel.
    options.batch = Math.max(20, s.contentionWriters);
    options.batchPerHost = s.contentionWriters;
  }
  return options;
}

// Fail fast (init context) when the identities file lacks a role a selected journey needs.
selectedJourneys(settings).forEach((j) => {
  j.journey.roles.forEach((role) => requireRole(role, `ULT_SCENARIO=${settings.scenario} (${j.name})`));
  if (j.journey.teams) j.journey.teams();
});

export const options = buildOptions(settings);
