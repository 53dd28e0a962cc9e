// The iterations a constant-arrival-rate scenario plans: rate x duration / timeUnit.
//
// k6 starts iterations by the clock, and at the very end of the duration it sometimes starts one
// more than planned (121 instead of 120 at 4/s for 30 s). A read journey does not mind; a write
// journey does: two runs over the same dataset must send the same writes. `beyondPlan()` tells an
// iteration that it is that extra one, and the write journeys then send nothing.

import exec from 'k6/execution';

const UNITS = { ms: 0.001, s: 1, m: 60, h: 3600 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

// "1m30s" -> 90; "500ms" -> 0.5. The string k6 holds in exec.test.options (validated by lib/env.js).
export function durationSeconds(text) {
  let seconds = 0;
  let match;
  PART.lastIndex = 0;
  while ((match = PART.exec(String(text))) !== null) seconds += Number(match[1]) * UNITS[match[2]];
  return seconds;
}

// rate x duration / timeUnit of the running scenario, rounded; Infinity for another executor.
export function plannedIterations() {
  const scenario = exec.test.options.scenarios[exec.scenario.name];
  if (!scenario || scenario.executor !== 'constant-arrival-rate') return Infinity;
  const unit = durationSeconds(scenario.timeUnit || '1s') || 1;
  return Math.round((scenario.rate * durationSeconds(scenario.duration)) / unit);
}

// True for an iteration k6 started beyond the plan (at the very end of the duration).
export function beyondPlan() {
  return exec.scenario.iterationInTest >= plannedIterations();
}
