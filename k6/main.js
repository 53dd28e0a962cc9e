// Entry script of the user-service load test.
//
//   k6 run -e ULT_TARGET_URL=http://127.0.0.1:18080/user/ -e ULT_IDENTITIES=/path/identities.json k6/main.js
//
// Everything is configured through ULT_* environment variables (k6/README.md). The
// scenarios' `exec` names the functions exported here.

export { options } from './lib/config.js';
export { studentLanding } from './scenarios/student_landing.js';
export { teacher } from './scenarios/teacher.js';
