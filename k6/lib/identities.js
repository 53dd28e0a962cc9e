// Identities from the identities file the pipeline's seeding step writes (ULT_IDENTITIES):
//
//   {"version": 1, "dataset_hash": "...", "identities": [{"user_id": "...", "role": "student"|"teacher",
//    "email": "...", "organization_id": "...", "school_id": "...", "class_ids": ["..."], "token": "<JWT>"}]}
//
// One SharedArray per role: the file is read and parsed once, not once per VU.
// Identities are picked round-robin by the scenario's iteration number, so two runs over
// the same dataset send the same requests as the same users in the same order.

import exec from 'k6/execution';
import { SharedArray } from 'k6/data';

import { settings } from './env.js';

export const SUPPORTED_VERSION = 1;
export const ROLES = ['student', 'teacher'];

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

const POOLS = { student: students, teacher: teachers };

// Throws (init context) when the identities file has no identity of `role`.
export function requireRole(role, why) {
  const pool = POOLS[role];
  if (!pool) throw new Error(`unknown identity role "${role}"`);
  if (pool.length === 0) {
    throw new Error(
      `ULT_IDENTITIES: ${settings.identitiesPath} has no identity with role "${role}", which ${why} needs; ` +
        'seed a dataset with that role or pick another ULT_SCENARIO',
    );
  }
  if (role === 'teacher') {
    for (let i = 0; i < pool.length; i++) {
      if (!pool[i].organization_id) {
        throw new Error(`ULT_IDENTITIES: ${settings.identitiesPath}: teacher ${pool[i].user_id} has no "organization_id"`);
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
