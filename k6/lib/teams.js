// Teams for the write journeys: per organization that has an Org Admin, the admins, students and
// teachers of that organization, as indexes into / ids from the identities file.
//
// Built once (a SharedArray) from the SharedArrays of lib/identities.js. Journeys pick a team by
// iteration number and take their students and teacher as slices chosen by that number, so every
// iteration stands on its own (no iteration uses what another created) and two runs over the same
// dataset send the same requests.

import { SharedArray } from 'k6/data';

import { settings } from './env.js';
import { orgAdmins, schoolAdmins, students, teachers } from './identities.js';

// Scenarios that write (and so need teams).
export const WRITE_SCENARIOS = ['admin_writes', 'roster_contention'];

export function writesSelected(s) {
  return WRITE_SCENARIOS.indexOf(s.scenario) >= 0 || (s.scenario === 'mixed' && s.weights.adminWrites > 0);
}

// Ids kept per team and role: enough for distinct slices, bounded so a team stays small to read.
export const MAX_STUDENTS_PER_TEAM = 500;
export const MAX_TEACHERS_PER_TEAM = 50;

function buildTeams() {
  const byOrg = {};
  const order = [];
  for (let i = 0; i < orgAdmins.length; i++) {
    const org = orgAdmins[i].organization_id;
    if (!org || byOrg[org]) continue;
    byOrg[org] = { organization_id: org, org_admin: i, school_admins: [], schools: [], students: [], teachers: [] };
    order.push(org);
  }
  for (let i = 0; i < schoolAdmins.length; i++) {
    const admin = schoolAdmins[i];
    const team = byOrg[admin.organization_id];
    if (team && admin.school_id) team.school_admins.push(i);
  }
  for (let i = 0; i < students.length; i++) {
    const student = students[i];
    const team = byOrg[student.organization_id];
    if (!team) continue;
    if (team.students.length < MAX_STUDENTS_PER_TEAM) team.students.push(student.user_id);
    if (student.school_id && team.schools.indexOf(student.school_id) < 0) team.schools.push(student.school_id);
  }
  for (let i = 0; i < teachers.length; i++) {
    const team = byOrg[teachers[i].organization_id];
    if (team && team.teachers.length < MAX_TEACHERS_PER_TEAM) team.teachers.push(teachers[i].user_id);
  }
  return order.map((org) => byOrg[org]);
}

// Built only when a write scenario runs: a read-only run never walks the identities for it.
export const teams = writesSelected(settings) ? new SharedArray('ult-write-teams', buildTeams) : [];

// `count` distinct items of `list` starting at `start` (wrapping round).
export function slice(list, start, count) {
  const picked = [];
  for (let k = 0; k < count && k < list.length; k++) picked.push(list[(start + k) % list.length]);
  return picked;
}

// Throws (init context) unless some team has what `needs` says:
// {schoolAdmins: n, students: n, teachers: n}. Teams lacking it are left out of `usable` (returned).
export function requireTeams(needs, why) {
  const usable = [];
  for (let i = 0; i < teams.length; i++) {
    const team = teams[i];
    if ((needs.schoolAdmins || 0) > team.school_admins.length) continue;
    if ((needs.students || 0) > team.students.length) continue;
    if ((needs.teachers || 0) > team.teachers.length) continue;
    if ((needs.schools || 0) > team.schools.length + team.school_admins.length) continue;
    usable.push(i);
  }
  if (usable.length === 0) {
    throw new Error(
      `ULT_IDENTITIES: no organization has an org_admin with ${needs.schoolAdmins || 0} school_admin(s), ` +
        `${needs.students || 0} students and ${needs.teachers || 0} teacher(s) in the identities file, which ` +
        `${why} needs; seed a dataset with administrators or pick another ULT_SCENARIO`,
    );
  }
  return usable;
}
