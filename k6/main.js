// Entry script of the user-service load test.
//
//   k6 run -e ULT_TARGET_URL=http://127.0.0.1:18080/user/ -e ULT_IDENTITIES=/path/identities.json k6/main.js
//
// Everything is configured through ULT_* environment variables (k6/README.md). The
// scenarios' `exec` names the functions exported here.

export { options } from './lib/config.js';
export { studentLanding } from './scenarios/student_landing.js';
export { teacher } from './scenarios/teacher.js';
export { adminWrites } from './scenarios/admin_writes.js';
export { rosterContention } from './scenarios/roster_contention.js';

// A prefix unique to this run for the names the write journeys create (classes): runs over the
// same dataset (an A/B re-run) never clash. Read journeys ignore it.
export function setup() {
  return { run: `ult${Date.now().toString(36)}` };
}
