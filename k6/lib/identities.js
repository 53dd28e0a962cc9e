// Identities from the identities file the pipeline's seeding step writes (ULT_IDENTITIES):
//
//   {"version": 1, "dataset_hash": "...", "identities": [{"user_id": "...",
//    "role": "student"|"teacher"|"org_admin"|"school_admin", "email": "...", "organization_id": "...",
//    "school_id": "..."|null, "class_ids": ["..."], "token": "<JWT>"}]}
//
// Roles: students and teachers have a school and their classes. "org_admin": an Organization
// Admin of organization_id (school_id null, no classes). "school_admin": the School Admin role
// on its membership of organization_id, and a member of school_id (no classes). Identities of
// roles this file does not know are ignored.
//
// One SharedArray per role (students, teachers, orgAdmins, schoolAdmins): the file is read and
// parsed once, not once per VU.
// Identities are picked round-robin by the scenario's iteration number, so two runs over
// the same dataset send the same requests as the same users in the same order.

import exec from 'k6/execution';
import { SharedArray } from 'k6/data';

import { settings } from './env.js';

export const SUPPORTED_VERSION = 1;
export const ROLES = ['student', 'teacher', 'org_admin', 'school_admin'];

function readRole(role) {
  const path = settings.identitiesPath;
  let text;
  try {
    text = open(path);
  } catch (e) {
    throw new Error(`ULT_IDENTITIES: cannot read ${path}: ${e.message || e}`);
  }
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`ULT_IDENTITIES: ${path} is not valid JSON: ${e.message || e}`);
  }
  if (doc === null || typeof doc !== 'object' || !Array.isArray(doc.identities)) {
    throw new Error(`ULT_IDENTITIES: ${path} has no "identities" array`);
  }
  if (doc.version !== SUPPORTED_VERSION) {
    throw new Error(`ULT_IDENTITIES: ${path} has version ${doc.version}; this suite reads version ${SUPPORTED_VERSION}`);
  }
  const picked = [];
  doc.identities.forEach((identity, index) => {
    if (!identity || identity.role !== role) return;
    if (typeof identity.token !== 'string' || identity.token === '' || typeof identity.user_id !== 'string') {
      throw new Error(`ULT_IDENTITIES: ${path}: identity #${index} (${role}) needs a "user_id" and a "token"`);
    }
    picked.push({
      user_id: identity.user_id,
      role: identity.role,
      email: identity.email || null,
      organization_id: identity.organization_id || null,
      school_id: identity.school_id || null,
      class_ids: Array.isArray(identity.class_ids) ? identity.class_ids : [],
      token: identity.token,
    });
  });
  return picked;
}

export const students = new SharedArray('ult-identities-student', () => readRole('student'));
export const teachers = new SharedArray('ult-identities-teacher', () => readRole('teacher'));

export const orgAdmins = new SharedArray('ult-identities-org_admin', () => readRole('org_admin'));
export const schoolAdmins = new SharedArray('ult-identities-school_admin', () => readRole('school_admin'));

const POOLS = { student: students, teacher: teachers, org_admin: orgAdmins, school_admin: schoolAdmins };
// Fields each identity of a role must carry for the journeys that use it.
const REQUIRED_FIELDS = {
  teacher: ['organization_id'],
  org_admin: ['organization_id'],
  school_admin: ['organization_id', 'school_id'],
};

// Throws (init context) when the identities file has no identity of `role`, or one of them
// lacks a field its role needs (teachers and admins: organization_id; school admins: school_id).
export function requireRole(role, why) {
  const pool = POOLS[role];
  if (!pool) throw new Error(`unknown identity role "${role}"`);
  if (pool.length === 0) {
    throw new Error(
      `ULT_IDENTITIES: ${settings.identitiesPath} has no identity with role "${role}", which ${why} needs; ` +
        'seed a dataset with that role or pick another ULT_SCENARIO',
    );
  }
  const fields = REQUIRED_FIELDS[role] || [];
  for (let i = 0; i < pool.length; i++) {
    for (const field of fields) {
      if (!pool[i][field]) {
        throw new Error(`ULT_IDENTITIES: ${settings.identitiesPath}: ${role} ${pool[i].user_id} has no "${field}"`);
      }
    }
  }
  return pool.length;
}

// The identity for the current iteration: round-robin over the role's pool.
export function identityFor(role) {
  const pool = POOLS[role];
  return pool[exec.scenario.iterationInTest % pool.length];
}
