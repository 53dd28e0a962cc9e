// Reads and validates every ULT_* environment variable the suite understands.
//
// Evaluated once per VU in the init context. Any problem throws, so `k6 run` and
// `k6 inspect` stop before the test starts, with a message that names the variable.
// The variables and their defaults are documented in k6/README.md.

export const SCENARIO_CHOICES = ['student_landing', 'teacher', 'admin_writes', 'roster_contention', 'mixed'];
export const PROFILE_CHOICES = ['default', 'short'];

// Load shape of each profile. Explicit ULT_* variables override these values.
export const PROFILES = {
  // The old load test: 22 iterations/s for 10 minutes, 100 pre-allocated VUs, 10x at most.
  default: { rate: 22, duration: '10m', preAllocatedVUs: 100, maxVUs: 1000 },
  // A smoke run for tests and for checking a target by hand.
  short: { rate: 5, duration: '20s', preAllocatedVUs: 5, maxVUs: 50 },
};

// `mixed`: shares of the rate. Writes are off by default so that `mixed` history stays comparable;
// e.g. 70/20/10 adds administrators' writes (ULT_ADMIN_WRITES_WEIGHT=10).
export const DEFAULT_WEIGHTS = { student: 80, teacher: 20, adminWrites: 0 };

// `roster_contention`: parallel one-student adds to one class per round.
export const DEFAULT_CONTENTION_WRITERS = 10;
export const CONTENTION_WRITERS_RANGE = [2, 50];

const DURATION = /^(\d+(\.\d+)?(ms|s|m|h))+$/;

function raw(env, name) {
  const value = env[name];
  if (value === undefined || value === null) return undefined;
  const trimmed = String(value).trim();
  return trimmed === '' ? undefined : trimmed;
}

function integer(env, name, fallback, min, problems, max) {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || (max !== undefined && Number(value) > max)) {
    const range = max === undefined ? `>= ${min}` : `from ${min} to ${max}`;
    problems.push(`${name} must be an integer ${range}, got "${value}"`);
    return fallback;
  }
  return Number(value);
}

function choice(env, name, choices, fallback, problems) {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (choices.indexOf(value) < 0) {
    problems.push(`${name} must be one of ${choices.join(', ')}, got "${value}"`);
    return fallback;
  }
  return value;
}

// A relative ULT_IDENTITIES is taken from the directory k6 was started in ($PWD, which
// `k6 run` passes to __ENV), not from the script's directory as k6's open() would do.
function absolutePath(path, env, problems) {
  if (path === undefined) return undefined;
  if (path.startsWith('/') || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith('file://')) return path;
  const cwd = raw(env, 'PWD');
  if (!cwd) {
    problems.push(
      `ULT_IDENTITIES is relative ("${path}") but k6 did not pass the working directory ($PWD): ` +
        'give an absolute path (or run with --include-system-env-vars)',
    );
    return path;
  }
  return `${cwd.replace(/\/+$/, '')}/${path.replace(/^\.\//, '')}`;
}

export function readSettings(env) {
  const problems = [];

  const targetUrl = raw(env, 'ULT_TARGET_URL');
  if (targetUrl === undefined) {
    problems.push('ULT_TARGET_URL is required: the GraphQL URL of the user-service, e.g. http://127.0.0.1:18080/user/');
  } else if (!/^https?:\/\/[^/\s]+/.test(targetUrl)) {
    problems.push(`ULT_TARGET_URL must be an http(s) URL such as http://127.0.0.1:18080/user/, got "${targetUrl}"`);
  }

  const identities = raw(env, 'ULT_IDENTITIES');
  if (identities === undefined) {
    problems.push('ULT_IDENTITIES is required: the path of the identities JSON file written by the seeding step');
  }
  const identitiesPath = absolutePath(identities, env, problems);

  const scenario = choice(env, 'ULT_SCENARIO', SCENARIO_CHOICES, 'student_landing', problems);
  const profileName = choice(env, 'ULT_PROFILE', PROFILE_CHOICES, 'default', problems);
  const profile = PROFILES[profileName];

  const rate = integer(env, 'ULT_RATE', profile.rate, 1, problems);
  let duration = raw(env, 'ULT_DURATION');
  if (duration === undefined) {
    duration = profile.duration;
  } else if (!DURATION.test(duration)) {
    problems.push(`ULT_DURATION must be a k6 duration such as 10m, 90s or 1h30m, got "${duration}"`);
  }
  const preAllocatedVUs = integer(env, 'ULT_PRE_ALLOCATED_VUS', profile.preAllocatedVUs, 1, problems);
  const maxVUs = integer(env, 'ULT_MAX_VUS', Math.max(profile.maxVUs, preAllocatedVUs), 1, problems);
  if (maxVUs < preAllocatedVUs) {
    problems.push(`ULT_MAX_VUS (${maxVUs}) must be >= ULT_PRE_ALLOCATED_VUS (${preAllocatedVUs})`);
  }

  const studentWeight = integer(env, 'ULT_STUDENT_WEIGHT', DEFAULT_WEIGHTS.student, 0, problems);
  const teacherWeight = integer(env, 'ULT_TEACHER_WEIGHT', DEFAULT_WEIGHTS.teacher, 0, problems);
  const adminWritesWeight = integer(env, 'ULT_ADMIN_WRITES_WEIGHT', DEFAULT_WEIGHTS.adminWrites, 0, problems);
  if (scenario === 'mixed' && studentWeight + teacherWeight + adminWritesWeight === 0) {
    problems.push(
      'ULT_STUDENT_WEIGHT, ULT_TEACHER_WEIGHT and ULT_ADMIN_WRITES_WEIGHT are all 0: the mixed scenario needs one above 0',
    );
  }
  const contentionWriters = integer(
    env,
    'ULT_CONTENTION_WRITERS',
    DEFAULT_CONTENTION_WRITERS,
    CONTENTION_WRITERS_RANGE[0],
    problems,
    CONTENTION_WRITERS_RANGE[1],
  );

  const build = raw(env, 'ULT_BUILD');

  if (problems.length > 0) {
    throw new Error(`invalid k6 suite configuration:\n  - ${problems.join('\n  - ')}\n(see k6/README.md)`);
  }

  return Object.freeze({
    targetUrl,
    identitiesPath,
    scenario,
    profile: profileName,
    rate,
    duration,
    preAllocatedVUs,
    maxVUs,
    weights: Object.freeze({ student: studentWeight, teacher: teacherWeight, adminWrites: adminWritesWeight }),
    contentionWriters,
    build,
  });
}

export const settings = readSettings(__ENV);
