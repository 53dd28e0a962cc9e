// A small GraphQL client for the user-service.
//
// - Documents live one per file in k6/graphql/<OperationName>.graphql and are read in the
//   init context with loadOperation(); each holds exactly one named operation.
// - Every request is tagged `operation` and `name` with the operation name, so per-operation
//   thresholds work and URLs never become metric names.
// - GraphQL errors come back with HTTP 200: the `no graphql errors` check and the
//   `graphql_errors` rate catch them; `http_req_failed` counts only non-200 responses.

import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter, Rate } from 'k6/metrics';

import { settings } from './env.js';

// Share of responses that were HTTP 200 but carried `errors` or no `data`.
export const graphqlErrors = new Rate('graphql_errors');
// Rows created or changed by successful writes, tagged `operation`.
export const rowsWritten = new Counter('rows_written');

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

// The most specific code of a failed response: the first per-element code of the first GraphQL error
// (`extensions.errors[]` in the sandbox, `extensions.exception.errors[]` in the real service), else
// `extensions.exception.code`, else `extensions.code`; `HTTP_<status>` for a non-200 answer.
export function errorCode(res, body) {
  if (res.status !== 200) return res.status ? `HTTP_${res.status}` : 'NO_RESPONSE';
  if (body === null) return 'INVALID_BODY';
  const errors = Array.isArray(body.errors) ? body.errors : [];
  if (errors.length === 0) return 'NO_DATA';
  const ext = (errors[0] && errors[0].extensions) || {};
  const exception = ext.exception || {};
  const inner = (Array.isArray(ext.errors) && ext.errors) || (Array.isArray(exception.errors) && exception.errors) || [];
  const first = inner.find((e) => e && typeof e.code === 'string' && e.code);
  return (first && first.code) || exception.code || ext.code || 'UNKNOWN';
}

let requestSeq = 0;

function nextRequestId() {
  requestSeq += 1;
  return `${exec.vu.idInTest}.${requestSeq}`;
}

function body(operation, variables) {
  return JSON.stringify({ query: operation.document, variables: variables || {}, operationName: operation.name });
}

function params(operation, identity, extraTags) {
  return {
    headers: {
      'Content-Type': 'application/json',
      // The user-service takes a user's JWT raw, without "Bearer ".
      Authorization: identity.token,
    },
    tags: Object.assign({ operation: operation.name, name: operation.name }, extraTags || {}),
  };
}

// Checks one response and records its metrics; {data, code}: data null and code set on failure.
function judge(operation, res, extraTags, rows) {
  const tags = Object.assign({ operation: operation.name }, extraTags || {});
  const parsed = res.status === 200 ? parseBody(res) : null;
  const graphqlOk = res.status === 200 && !hasErrors(parsed);
  const graphqlFailed = res.status === 200 && !graphqlOk;
  const code = graphqlOk ? null : errorCode(res, parsed);
  graphqlErrors.add(graphqlFailed, graphqlFailed ? Object.assign({ error_code: code }, tags) : tags);
  check(
    res,
    {
      'status is 200': (r) => r.status === 200,
      'no graphql errors': () => graphqlOk,
    },
    tags,
  );
  if (!graphqlOk) {
    logFailure(operation, res, parsed);
    return { data: null, code };
  }
  if (rows) rowsWritten.add(rows, { operation: operation.name });
  return { data: parsed.data, code: null };
}

// Sends one operation as `identity`; {data, code} (data null, code the error code, on failure).
// `rows`: for a write, the rows it creates or changes when it succeeds (counted in rows_written).
export function send(operation, identity, variables, rows) {
  const metadata = exec.vu.metrics.metadata;
  metadata.request = nextRequestId();
  try {
    const res = http.post(settings.targetUrl, body(operation, variables), params(operation, identity));
    return judge(operation, res, null, rows);
  } finally {
    delete metadata.request;
  }
}

// Sends one operation as `identity` and returns the response's `data`, or null on failure.
export function request(operation, identity, variables, rows) {
  return send(operation, identity, variables, rows).data;
}

// Sends `operation` once per element of `variablesList`, all at the same moment (http.batch; the
// options' batch/batchPerHost must allow that many). Each request is tagged `writer=<index>`.
// Returns one {data, code} per element, in order.
export function sendTogether(operation, identity, variablesList, rows) {
  const metadata = exec.vu.metrics.metadata;
  metadata.request = nextRequestId();
  try {
    const responses = http.batch(
      variablesList.map((variables, i) => ({
        method: 'POST',
        url: settings.targetUrl,
        body: body(operation, variables),
        params: params(operation, identity, { writer: String(i) }),
      })),
    );
    return responses.map((res, i) => judge(operation, res, { writer: String(i) }, rows));
  } finally {
    delete metadata.request;
  }
}

// Records whether a response carried the ids the next step needs. Returns `value`'s truthiness.
export function expectIds(operation, value) {
  return check(value, { 'response has the ids the next step needs': (v) => Boolean(v) }, { operation: operation.name });
}
