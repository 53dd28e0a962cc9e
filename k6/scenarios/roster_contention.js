// Scenario `roster_contention`: provokes lost roster writes on purpose.
//
// Each iteration (a "round"): an Org Admin creates one class (name unique per run and round) and
// links it to a school of the organization, then sends ULT_CONTENTION_WRITERS addStudentsToClasses
// calls, ONE distinct student each, to that class at the same moment (http.batch). Every call is
// recorded in the counter `roster_adds_acknowledged`, tagged class_id and student_id: value 1 when
// the service acknowledged the add, 0 with the tag `error_code` when it refused it. After the run the
// pipeline reads each class's roster back (ult_pipeline/loadtest/contention.py): an acknowledged
// student missing from it is a lost write.
//
// Every other scenario lets one VU at a time write a class; this one exists to break that rule.

import exec from 'k6/execution';
import { Counter } from 'k6/metrics';

import { settings } from '../lib/env.js';
import { expectIds, loadOperation, send, sendTogether } from '../lib/graphql.js';
import { orgAdmins, schoolAdmins } from '../lib/identities.js';
import { beyondPlan } from '../lib/plan.js';
import { requireTeams, slice, teams } from '../lib/teams.js';
import { namePrefix } from './admin_writes.js';

export const ROLES = Object.freeze(['org_admin', 'student']);
export const acknowledged = new Counter('roster_adds_acknowledged');

const CREATE = loadOperation('createClasses');
const LINK = loadOperation('addClassesToSchools');
const ADD_STUDENTS = loadOperation('addStudentsToClasses');

export const OPERATIONS = Object.freeze([CREATE, LINK, ADD_STUDENTS].map((op) => op.name));

export function needs(s) {
  return { students: s.contentionWriters, schools: 1 };
}

let usable = null;
export function usableTeams() {
  if (usable === null) {
    usable = requireTeams(needs(settings), `ULT_SCENARIO roster_contention (ULT_CONTENTION_WRITERS=${settings.contentionWriters})`);
  }
  return usable;
}

function schoolOf(team) {
  if (team.school_admins.length > 0) return schoolAdmins[team.school_admins[0]].school_id;
  return team.schools[0];
}

export function rosterContention(data) {
  if (beyondPlan()) return; // the same rounds in every run (lib/plan.js)
  const n = exec.scenario.iterationInTest;
  const writers = settings.contentionWriters;
  const pool = usableTeams();
  const team = teams[pool[n % pool.length]];
  const round = Math.floor(n / pool.length);
  const admin = orgAdmins[team.org_admin];
  const organizationId = team.organization_id;
  const pupils = slice(team.students, round * writers, writers);

  const created = send(CREATE, admin, { input: [{ organizationId, name: `${namePrefix(data)}-c${n}` }] }, 1);
  const classes = (created.data && created.data.createClasses && created.data.createClasses.classes) || [];
  const classId = classes.length === 1 && classes[0] ? classes[0].id : null;
  if (created.data !== null) expectIds(CREATE, classId);
  if (!classId) return;

  send(LINK, admin, { input: [{ schoolId: schoolOf(team), classIds: [classId] }] }, 1);

  const results = sendTogether(
    ADD_STUDENTS,
    admin,
    pupils.map((studentId) => ({ input: [{ classId, studentIds: [studentId] }] })),
    1,
  );
  results.forEach((result, i) => {
    const tags = { class_id: classId, student_id: pupils[i] };
    if (result.data !== null) acknowledged.add(1, tags);
    else acknowledged.add(0, Object.assign({ error_code: result.code }, tags));
  });
}
