"""Every AWS API call a piece of code makes, as IAM actions, and a policy compared with them.

`recording()` hooks every botocore client created while it is active, whatever creates it
(`boto3.client`, a `boto3.session.Session`, `boto3.resource(...).meta.client`, with or without
an `endpoint_url`): `botocore.session.Session.create_client` is wrapped to register a
`before-parameter-build` handler on each new client. That event is emitted once per API call (not
per retry attempt), with the operation's model and the caller's parameters, by every operation,
paginators' pages and waiters' polls included: a waiter on ECS services is recorded as the
`DescribeServices` calls it makes.

Each call is named by the code that made it (`origin`: the innermost frame in `ult_pipeline` or
`dagster_aws`, else in the tests, else the outermost known one), so that calls made by test
fixtures and by the sandbox's own scaffolding (`ult_pipeline/sandbox/`) are told apart from the
pipeline's: only `Call.in_production` calls need a permission in production.

Operation to IAM action: the action is `<signing name>:<operation>` for every service the
pipeline uses (ECR, ECS, EC2, Secrets Manager, CloudWatch Logs), except S3, whose object and
bucket operations are authorised by fewer actions (`S3_ACTIONS`, from the Service Authorization
Reference: HeadObject needs s3:GetObject, ListObjects(V2) s3:ListBucket, DeleteObjects
s3:DeleteObject, the multipart-upload calls s3:PutObject).
"""

from __future__ import annotations

import fnmatch
import json
import string
import threading
import traceback
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session

ROOT = Path(__file__).resolve().parents[2]
POLICY_PATH = ROOT / "deploy" / "iam-policy.json"

# S3 operations authorised by another action than their own name.
S3_ACTIONS = {
    "ListBuckets": "s3:ListAllMyBuckets",
    "HeadObject": "s3:GetObject",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "DeleteObjects": "s3:DeleteObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
}
# Where a call is made, by package: the pipeline's code, what it runs on in production (dagster-aws),
# and the tests'.
_PIPELINE = ("ult_pipeline",)
_PRODUCTION_LIBRARIES = ("dagster_aws",)
_TESTS = ("ult_pipeline_tests",)
_SANDBOX = "ult_pipeline/sandbox/"


def iam_action(signing_name: str, operation: str) -> str:
    """The IAM action that authorises `operation` of the service whose signing name is `signing_name`."""
    if signing_name == "s3":
        return S3_ACTIONS.get(operation, f"s3:{operation}")
    return f"{signing_name}:{operation}"


def _package_path(filename: str) -> str | None:
    """'ult_pipeline/deploy/ecs.py' for a file inside one of the packages named above, else None."""
    parts = Path(filename).parts
    for i, part in enumerate(parts):
        if part in _PIPELINE + _PRODUCTION_LIBRARIES + _TESTS:
            return "/".join(parts[i:])
    return None


def _package(path: str) -> str:
    return path.split("/", 1)[0]


def _origin(frames: Iterable[traceback.FrameSummary]) -> str:
    """'<package path>:<function>' of the innermost frame in the pipeline or dagster-aws; else of the
    innermost in the tests; else of the innermost frame in an installed library (a worker thread of
    one, such as s3transfer's, whose stack never reaches the code that gave it the work)."""
    frames = list(frames)
    inner_test = None
    for frame in reversed(frames):
        path = _package_path(frame.filename)
        if path is None:
            continue
        if _package(path) in _PIPELINE + _PRODUCTION_LIBRARIES:
            return f"{path}:{frame.name}"
        inner_test = inner_test or f"{path}:{frame.name}"
    if inner_test:
        return inner_test
    for frame in reversed(frames):
        parts = Path(frame.filename).parts
        if "site-packages" in parts and not parts[parts.index("site-packages") + 1].startswith("botocore"):
            return "/".join(parts[parts.index("site-packages") + 1:]) + f":{frame.name}"
    return "elsewhere"


@dataclass(frozen=True)
class Call:
    """One API call: its IAM action, the operation, the code that made it, its parameters' names."""

    action: str
    operation: str
    origin: str
    params: frozenset[str] = field(default=frozenset())
    # The parameters' values that name resources (strings, lists of strings, S3 keys to delete).
    values: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    @property
    def in_production(self) -> bool:
        """Needs a permission in production: made by the pipeline (not its sandbox scaffolding), by
        dagster-aws or by a library working for them (s3transfer's threads); not by the tests."""
        return _package(self.origin) not in _TESTS and not self.origin.startswith(_SANDBOX)


def _resource_values(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    values = []
    for name, value in params.items():
        if isinstance(value, str):
            values.append((name, value))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            values.append((name, tuple(value)))
        elif name == "Delete" and isinstance(value, Mapping):
            values.append(("Keys", tuple(o.get("Key", "") for o in value.get("Objects", []))))
    return tuple(values)


def _last(name_or_arn: str) -> str:
    return name_or_arn.rsplit("/", 1)[-1]


def resources_of(call: Call, region: str, account: str) -> list[str] | None:
    """The ARNs `call` acts on, as IAM matches them against `Resource`; None for an action without
    resource-level permissions (or one this function does not know)."""
    v = dict(call.values)
    service = call.action.split(":", 1)[0]
    if service == "ecr" and "repositoryName" in v:
        return [f"arn:aws:ecr:{region}:{account}:repository/{v['repositoryName']}"]
    if call.action in ("ecs:DescribeServices", "ecs:UpdateService"):
        cluster = _last(v.get("cluster", "default"))
        return [f"arn:aws:ecs:{region}:{account}:service/{cluster}/{_last(s)}" for s in v.get("services", (v.get("service"),))]
    if call.action == "ecs:RunTask":
        definition = v["taskDefinition"]
        return [definition if definition.startswith("arn:") else
                f"arn:aws:ecs:{region}:{account}:task-definition/{definition}"]
    if call.action in ("ecs:DescribeTasks", "ecs:StopTask"):
        cluster = _last(v.get("cluster", "default"))
        return [t if t.startswith("arn:") else f"arn:aws:ecs:{region}:{account}:task/{cluster}/{t}"
                for t in v.get("tasks", (v.get("task"),))]
    if call.action == "logs:GetLogEvents":
        return [f"arn:aws:logs:{region}:{account}:log-group:{v['logGroupName']}:log-stream:{v['logStreamName']}"]
    if service == "s3" and "Bucket" in v:
        if call.action == "s3:ListBucket":
            return [f"arn:aws:s3:::{v['Bucket']}"]
        keys = v.get("Keys") or ((v["Key"],) if "Key" in v else ())
        return [f"arn:aws:s3:::{v['Bucket']}/{key}" for key in keys]
    return None


def render(policy_text: str, values: Mapping[str, str]) -> dict:
    """The policy with its `${NAME}` placeholders filled in (KeyError for one without a value)."""
    return json.loads(string.Template(policy_text).substitute(values))


def out_of_scope(policy: Mapping, calls: Iterable[Call], region: str, account: str) -> list[str]:
    """The production calls whose resources no Allow statement granting their action covers
    (`Resource` patterns; of the conditions, `s3:prefix` is checked for listings)."""
    problems = []
    for call in calls:
        if not call.in_production:
            continue
        arns = resources_of(call, region, account)
        if arns is None:
            continue
        statements = [s for s in _as_list(policy["Statement"])
                      if s.get("Effect") == "Allow" and call.action in _as_list(s["Action"])]
        for arn in arns:
            if not any(_covers(s, arn, dict(call.values)) for s in statements):
                problems.append(f"{call.action} on {arn} (by {call.origin})")
    return sorted(set(problems))


def _covers(statement: Mapping, arn: str, values: Mapping[str, Any]) -> bool:
    if not any(fnmatch.fnmatchcase(arn, pattern) for pattern in _as_list(statement["Resource"])):
        return False
    prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
    # One pattern or several (IAM: any of them).
    return prefixes is None or any(fnmatch.fnmatchcase(values.get("Prefix", ""), p) for p in _as_list(prefixes))


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def _before_call(self, model, params=None, **_kwargs) -> None:
        params = params or {}
        call = Call(iam_action(model.service_model.signing_name, model.name), model.name,
                    _origin(traceback.extract_stack()[:-1]), frozenset(params.keys()), _resource_values(params))
        with self._lock:
            self.calls.append(call)

    def production_calls(self) -> list[Call]:
        return [c for c in self.calls if c.in_production]

    def actions(self) -> set[str]:
        """The IAM actions of the production calls."""
        return {c.action for c in self.production_calls()}

    def where(self) -> dict[str, set[str]]:
        """action -> the code that made production calls needing it (for failure messages)."""
        found: dict[str, set[str]] = {}
        for call in self.production_calls():
            found.setdefault(call.action, set()).add(call.origin)
        return found


@contextmanager
def recording() -> Iterator[Recorder]:
    """Records the calls of every botocore client created inside the block (in any thread)."""
    recorder = Recorder()
    original = botocore.session.Session.create_client

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build", recorder._before_call)
        return client

    botocore.session.Session.create_client = create_client
    try:
        yield recorder
    finally:
        botocore.session.Session.create_client = original


@dataclass(frozen=True)
class Implied:
    """An action IAM also checks when `call` is made with any of `params` (None: always), with no API
    call of its own (the Service Authorization Reference's "dependent actions")."""

    action: str
    call: str
    params: tuple[str, ...] | None
    why: str

    def applies(self, call: Call) -> bool:
        return call.action == self.call and (self.params is None or bool(call.params & set(self.params)))


IMPLIED = (
    Implied("iam:PassRole", "ecs:RegisterTaskDefinition", ("taskRoleArn", "executionRoleArn"),
            "a task definition that names a task or execution role passes it to ECS"),
    Implied("iam:PassRole", "ecs:RunTask", None,
            "running a task passes its task definition's roles to ECS"),
    Implied("ecs:TagResource", "ecs:RunTask", ("tags",),
            "ECS authorises tags given when a task is created (tag on create) with ecs:TagResource"),
)


def needed_actions(calls: Iterable[Call], implied: Iterable[Implied] = IMPLIED) -> dict[str, set[str]]:
    """action -> where it is needed: the production calls' actions, and the actions they imply."""
    needed: dict[str, set[str]] = {}
    implied = list(implied)
    for call in calls:
        if not call.in_production:
            continue
        needed.setdefault(call.action, set()).add(call.origin)
        for rule in implied:
            if rule.applies(call):
                needed.setdefault(rule.action, set()).add(f"{call.action} at {call.origin}: {rule.why}")
    return needed


# ---- The policy ---------------------------------------------------------------------------------------------


def load_policy(path: Path = POLICY_PATH) -> dict:
    return json.loads(Path(path).read_text())


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def granted_actions(policy: Mapping) -> dict[str, str]:
    """action -> the Sid of the Allow statement granting it. ValueError for what this check cannot
    judge: a wildcard action, NotAction, or an action granted twice."""
    granted: dict[str, str] = {}
    for statement in _as_list(policy["Statement"]):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            raise ValueError(f"statement {statement.get('Sid')}: NotAction grants everything else")
        for action in _as_list(statement["Action"]):
            if "*" in action or "?" in action:
                raise ValueError(f"statement {statement.get('Sid')}: wildcard action {action}")
            if action in granted:
                raise ValueError(f"{action} is granted twice ({granted[action]}, {statement.get('Sid')})")
            granted[action] = statement.get("Sid", "")
    return granted


@dataclass(frozen=True)
class Comparison:
    missing: dict[str, set[str]]  # action called but not granted -> the code that called it
    unused: dict[str, str]  # action granted but never needed -> its statement's Sid

    @property
    def exact(self) -> bool:
        return not self.missing and not self.unused

    def report(self) -> str:
        lines = [f"missing from the policy: {action} (called by {', '.join(sorted(where))})"
                 for action, where in sorted(self.missing.items())]
        lines += [f"granted but never called: {action} (statement {sid})" for action, sid in sorted(self.unused.items())]
        return "\n".join(lines) or "exact"


def compare(policy: Mapping, needed: Mapping[str, Iterable[str]]) -> Comparison:
    """The policy against `needed` (action -> where it is needed): what is missing, what is unused."""
    granted = granted_actions(policy)
    missing = {a: set(where) for a, where in needed.items() if a not in granted}
    unused = {a: sid for a, sid in granted.items() if a not in needed}
    return Comparison(missing, unused)
