// Scenario `admin_writes`: an administrator's session of writes.
//
// Nine requests per iteration, in order. A School Admin (class and roster writes) and an Org Admin
// of the same organization (school links, user edits and deletes: permissions a School Admin lacks)
// create two classes, fill and edit them, then delete them:
//
//   createClasses (2) -> addClassesToSchools (both, the School Admin's school) -> addStudentsToClasses
//   (4 to the first) -> addTeachersToClasses (1 to the first) -> updateClasses (rename the first) ->
//   moveStudentsToClass (1, first -> second) -> updateUsers (rename 2 students) ->
//   removeStudentsFromClasses (1 from the first) -> deleteClasses (both)
//
// Every iteration creates its own classes (names unique per run and iteration) and picks its
// students and teacher from its organization's identities by iteration number, so no iteration
// depends on another's work and runs over the same dataset send the same requests. A step whose
// input is missing (an earlier step failed) is skipped and the `response has the ids the next step
// needs` check fails.

import exec from 'k6/execution';

import { expectIds, loadOperation, send } from '../lib/graphql.js';
import { orgAdmins, schoolAdmins } from '../lib/identities.js';
import { beyondPlan } from '../lib/plan.js';
import { requireTeams, slice, teams } from '../lib/teams.js';

// Roles this journey's identities file must hold (checked in lib/config.js).
export const ROLES = Object.freeze(['org_admin', 'school_admin', 'student', 'teacher']);
export const STUDENTS_PER_ITERATION = 4;
export const RENAMED_PER_ITERATION = 2;

const CREATE = loadOperation('createClasses');
const LINK = loadOperation('addClassesToSchools');
const ADD_STUDENTS = loadOperation('addStudentsToClasses');
const ADD_TEACHERS = loadOperation('addTeachersToClasses');
const UPDATE_CLASSES = loadOperation('updateClasses');
const MOVE = loadOperation('moveStudentsToClass');
const UPDATE_USERS = loadOperation('updateUsers');
const REMOVE = loadOperation('removeStudentsFromClasses');
const DELETE = loadOperation('deleteClasses');

// In the order one iteration sends them.
export const OPERATIONS = Object.freeze(
  [CREATE, LINK, ADD_STUDENTS, ADD_TEACHERS, UPDATE_CLASSES, MOVE, UPDATE_USERS, REMOVE, DELETE].map((op) => op.name),
);

export const NEEDS = Object.freeze({ schoolAdmins: 1, students: STUDENTS_PER_ITERATION, teachers: 1 });

let usable = null;
// Checked once per VU (init of the first iteration); config.js checks it at start.
export function usableTeams() {
  if (usable === null) usable = requireTeams(NEEDS, 'ULT_SCENARIO admin_writes');
  return usable;
}

// A run's prefix for the names it creates (setup() in main.js), so runs over one dataset never clash.
export function namePrefix(data) {
  return (data && data.run) || 'ult';
}

function classIds(data) {
  const classes = (data && data.createClasses && data.createClasses.classes) || [];
  return classes.map((c) => c && c.id).filter(Boolean);
}

export function adminWrites(data) {
  // Two runs over the same dataset send the same writes: never the extra iteration k6 may start at the end.
  if (beyondPlan()) return;
  const n = exec.scenario.iterationInTest;
  const pool = usableTeams();
  const team = teams[pool[n % pool.length]];
  const round = Math.floor(n / pool.length); // this team's n-th iteration
  const schoolAdmin = schoolAdmins[team.school_admins[round % team.school_admins.length]];
  const orgAdmin = orgAdmins[team.org_admin];
  const organizationId = team.organization_id;
  const schoolId = schoolAdmin.school_id;
  const pupils = slice(team.students, round * STUDENTS_PER_ITERATION, STUDENTS_PER_ITERATION);
  const teacher = team.teachers[round % team.teachers.length];
  const name = `${namePrefix(data)}-w${n}`;

  // 1. createClasses: two classes in the organization.
  const created = send(CREATE, schoolAdmin, { input: [{ organizationId, name: `${name}a` }, { organizationId, name: `${name}b` }] }, 2);
  const ids = created.data === null ? [] : classIds(created.data);
  if (created.data !== null) expectIds(CREATE, ids.length === 2);
  if (ids.length !== 2) return;
  const [first, second] = ids;

  // 2. addClassesToSchools: both in the School Admin's school (moveStudentsToClass needs one school).
  const linked = send(LINK, orgAdmin, { input: [{ schoolId, classIds: [first, second] }] }, 2);

  // 3. addStudentsToClasses: a handful to the first class.
  const added = send(ADD_STUDENTS, schoolAdmin, { input: [{ classId: first, studentIds: pupils }] }, pupils.length);

  // 4. addTeachersToClasses: one teacher to the first class.
  send(ADD_TEACHERS, schoolAdmin, { input: [{ classId: first, teacherIds: [teacher] }] }, 1);

  // 5. updateClasses: the first class renamed.
  send(UPDATE_CLASSES, schoolAdmin, { input: [{ classId: first, className: `${name}a-renamed` }] }, 1);

  // 6. moveStudentsToClass: the first student to the second class (needs steps 2 and 3).
  if (expectIds(MOVE, linked.data !== null && added.data !== null)) {
    send(MOVE, schoolAdmin, { input: { fromClassId: first, toClassId: second, userIds: [pupils[0]] } }, 1);
  }

  // 7. updateUsers: two students renamed (names unique per iteration and slot).
  const renamed = pupils.slice(1, 1 + RENAMED_PER_ITERATION).map((id, k) => ({ id, givenName: 'Load', familyName: `W${n}s${k}` }));
  send(UPDATE_USERS, orgAdmin, { input: renamed }, renamed.length);

  // 8. removeStudentsFromClasses: the last student out of the first class (needs step 3).
  if (added.data !== null) {
    send(REMOVE, schoolAdmin, { input: [{ classId: first, studentIds: [pupils[pupils.length - 1]] }] }, 1);
  }

  // 9. deleteClasses: both (soft delete).
  send(DELETE, orgAdmin, { input: [{ id: first }, { id: second }] }, 2);
}
