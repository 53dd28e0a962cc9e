// Scenario `student_landing`: the old "landing" journey, a student opening the app.
//
// Eight requests per iteration, in the old order. Like the old test, later steps use ids
// from earlier responses: the organization from `memberships` (step 3) scopes steps 4, 6
// and 8; the first profile from `myUsers` (step 5) is the user read in step 6. When a
// response lacks an id, the `response has the ids the next step needs` check fails and
// only the steps that need that id are skipped.

import { expectIds, loadOperation, request } from '../lib/graphql.js';
import { identityFor } from '../lib/identities.js';

export const ROLE = 'student';

// The permissions a student's landing page asks about.
export const LANDING_PERMISSION_IDS = Object.freeze([
  'attend_live_class_as_a_student_187',
  'view_my_calendar_510',
  'view_subjects_20115',
]);

const ME = loadOperation('me');
const MY_USER = loadOperation('myUser');
const MEMBERSHIPS = loadOperation('memberships');
const ORG_MEMBERSHIPS = loadOperation('orgMemberships');
const MY_USERS = loadOperation('myUsers');
const USER_NODE = loadOperation('userNode');
const MY_CLASSES = loadOperation('myClasses');
const PERMISSIONS = loadOperation('permissions');

// In the order one iteration sends them.
export const OPERATIONS = Object.freeze(
  [ME, MY_USER, MEMBERSHIPS, ORG_MEMBERSHIPS, MY_USERS, USER_NODE, MY_CLASSES, PERMISSIONS].map((op) => op.name),
);

function firstOrganizationId(data) {
  const connection = data && data.myUser && data.myUser.node && data.myUser.node.organizationMembershipsConnection;
  const edges = (connection && connection.edges) || [];
  const edge = edges.find((e) => e && e.node && e.node.organizationId);
  return edge ? edge.node.organizationId : null;
}

function firstProfileId(data) {
  const profiles = (data && data.my_users) || [];
  const profile = profiles.find((p) => p && p.user_id);
  return profile ? profile.user_id : null;
}

// Checks a response that arrived (data not null) for the id the journey needs next.
function idFrom(operation, data, pick) {
  if (data === null) return null;
  const id = pick(data);
  expectIds(operation, id);
  return id || null;
}

export function studentLanding() {
  const identity = identityFor(ROLE);

  // 1. me
  request(ME, identity);

  // 2. myUser: the user's own id scopes step 4.
  const myUser = request(MY_USER, identity);
  const userId = idFrom(MY_USER, myUser, (d) => d.myUser && d.myUser.node && d.myUser.node.id);

  // 3. memberships: the first membership's organization scopes steps 4, 6 and 8.
  const organizationId = idFrom(MEMBERSHIPS, request(MEMBERSHIPS, identity), firstOrganizationId);

  // 4. orgMemberships: the user's membership in that organization.
  if (userId && organizationId) {
    request(ORG_MEMBERSHIPS, identity, { userId, organizationId });
  }

  // 5. myUsers: the first profile is the user read in step 6.
  const profileId = idFrom(MY_USERS, request(MY_USERS, identity), firstProfileId);

  // 6. userNode(id, organizationId)
  if (profileId && organizationId) {
    request(USER_NODE, identity, { userId: profileId, organizationId });
  }

  // 7. myClasses: classesStudying / classesTeaching
  request(MY_CLASSES, identity);

  // 8. permissions in the organization
  if (organizationId) {
    request(PERMISSIONS, identity, { organizationId, permissionIds: LANDING_PERMISSION_IDS });
  }
}
