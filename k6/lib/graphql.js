// A small GraphQL client for the user-service.
//
// - Documents live one per file in k6/graphql/<OperationName>.graphql and are read in the
//   init context with loadOperation(); each holds exactly one named operation.
// - Every request is tagged `operation` and `name` with the operation name, so per-operation
//   thresholds work and URLs never become metric names.
// - GraphQL errors come back with HTTP 200: the `no graphql errors` check and the
//   `graphql_errors` rate catch them; `http_req_failed` counts only non-200 responses.

import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';

import { settings } from './env.js';

// Share of responses that were HTTP 200 but carried `errors` or no `data`.
export const graphqlErrors = new Rate('graphql_errors');

// Only a 200 is an expected response (the default also accepts 201-399).
http.setResponseCallback(http.expectedStatuses(200));

const OPERATION_DEFINITION = /(^|[\s}])(query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)/g;
const MAX_LOGGED_ERRORS_PER_VU = 5;
let loggedErrors = 0;

function stripComments(text) {
  return text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .trim();
}

// Reads k6/graphql/<name>.graphql. Init context only (it uses open()).
export function loadOperation(name) {
  const path = import.meta.resolve(`../graphql/${name}.graphql`);
  const document = stripComments(open(path));
  const names = [];
  let match;
  OPERATION_DEFINITION.lastIndex = 0;
  while ((match = OPERATION_DEFINITION.exec(document)) !== null) names.push(match[3]);
  if (names.length !== 1 || names[0] !== name) {
    throw new Error(`${path} must hold exactly one operation, named "${name}"; found [${names.join(', ')}]`);
  }
  return Object.freeze({ name, document });
}

function parseBody(res) {
  if (typeof res.body !== 'string' || res.body.length === 0) return null;
  try {
    const body = JSON.parse(res.body);
    return body !== null && typeof body === 'object' ? body : null;
  } catch (e) {
    return null;
  }
}

function hasErrors(body) {
  if (body === null) return true;
  if (Array.isArray(body.errors) ? body.errors.length > 0 : body.errors != null) return true;
  return body.data === null || body.data === undefined;
}

function logFailure(operation, res, body) {
  if (loggedErrors >= MAX_LOGGED_ERRORS_PER_VU) return;
  loggedErrors += 1;
  let detail;
  if (body && Array.isArray(body.errors) && body.errors.length > 0) {
    detail = body.errors.map((e) => (e && e.message) || JSON.stringify(e)).join(' | ');
  } else {
    detail = String(res.body || res.error || '').slice(0, 300);
  }
  console.warn(`${operation.name}: HTTP ${res.status}: ${detail}`);
}

// Sends one operation as `identity` and returns the response's `data`, or null on failure.
export function request(operation, identity, variables) {
  const tags = { operation: operation.name, name: operation.name };
  const res = http.post(
    settings.targetUrl,
    JSON.stringify({ query: operation.document, variables: variables || {}, operationName: operation.name }),
    {
      headers: {
        'Content-Type': 'application/json',
        // The user-service takes a user's JWT raw, without "Bearer ".
        Authorization: identity.token,
      },
      tags,
    },
  );

  const body = res.status === 200 ? parseBody(res) : null;
  const graphqlOk = res.status === 200 && !hasErrors(body);
  graphqlErrors.add(res.status === 200 && !graphqlOk, { operation: operation.name });
  check(
    res,
    {
      'status is 200': (r) => r.status === 200,
      'no graphql errors': () => graphqlOk,
    },
    { operation: operation.name },
  );
  if (!graphqlOk) {
    logFailure(operation, res, body);
    return null;
  }
  return body.data;
}

// Records whether a response carried the ids the next step needs. Returns `value`'s truthiness.
export function expectIds(operation, value) {
  return check(value, { 'response has the ids the next step needs': (v) => Boolean(v) }, { operation: operation.name });
}
