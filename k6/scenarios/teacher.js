// Scenario `teacher`: a teacher opening their classes.
//
// Five requests per iteration: the classes taught with their students, the schools of the
// teacher's organization (organization_id from the identities file), a batch of
// checkAllowed permission checks in that organization, permission checks in the first
// school found, and the roster of the first class found. A step whose id is missing is
// skipped and the `response has the ids the next step needs` check fails.

import { expectIds, loadOperation, request } from '../lib/graphql.js';
import { identityFor } from '../lib/identities.js';

export const ROLE = 'teacher';

// The permissions a teacher's class pages ask about in a school.
export const SCHOOL_PERMISSION_IDS = Object.freeze([
  'attend_live_class_as_a_teacher_186',
  'view_my_calendar_510',
  'create_my_schedule_events_521',
  'view_subjects_20115',
]);

const CLASSES = loadOperation('teacherClasses');
const SCHOOLS = loadOperation('teacherSchools');
const PERMISSIONS = loadOperation('teacherPermissions');
const SCHOOL_PERMISSIONS = loadOperation('teacherSchoolPermissions');
const ROSTER = loadOperation('teacherRoster');

// In the order one iteration sends them.
export const OPERATIONS = Object.freeze([CLASSES, SCHOOLS, PERMISSIONS, SCHOOL_PERMISSIONS, ROSTER].map((op) => op.name));

function firstNodeId(connection) {
  const edges = (connection && connection.edges) || [];
  const edge = edges.find((e) => e && e.node && e.node.id);
  return edge ? edge.node.id : null;
}

export function teacher() {
  const identity = identityFor(ROLE);
  const organizationId = identity.organization_id;

  // 1. teacherClasses: the first class taught is the roster read in step 5.
  const classes = request(CLASSES, identity);
  let classId = null;
  if (classes !== null) {
    const node = classes.myUser && classes.myUser.node;
    classId = firstNodeId(node && node.classesTeachingConnection);
    expectIds(CLASSES, classId);
  }

  // 2. teacherSchools: the first school scopes step 4.
  const schools = request(SCHOOLS, identity, { organizationId });
  let schoolId = null;
  if (schools !== null) {
    schoolId = firstNodeId(schools.schoolsConnection);
    expectIds(SCHOOLS, schoolId);
  }

  // 3. teacherPermissions: checkAllowed batch in the organization.
  request(PERMISSIONS, identity, { organizationId });

  // 4. teacherSchoolPermissions
  if (schoolId) {
    request(SCHOOL_PERMISSIONS, identity, { schoolId, permissionIds: SCHOOL_PERMISSION_IDS });
  }

  // 5. teacherRoster
  if (classId) {
    request(ROSTER, identity, { classId });
  }
}
