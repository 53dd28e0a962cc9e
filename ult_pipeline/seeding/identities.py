"""Identities for k6: one signed token per seeded student and teacher.

The file holds tokens, so it is written readable by its owner only, and nothing derived
from it (logs, metadata, the manifest) carries a token.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from ult_pipeline.seeding.dataset import STUDENT, TEACHER, Dataset
from ult_pipeline.seeding.seeder import SeededIds

# The user-service's development issuer (accepted when it runs with NODE_ENV=development).
DEV_ISSUER = "calmid-debug"
DEV_SECRET = "iXtZx1D5AqEB0B9pfn+hRQ=="
ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512")


@dataclass(frozen=True)
class TokenSigner:
    issuer: str = DEV_ISSUER
    algorithm: str = "HS256"
    key: str = DEV_SECRET

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"token algorithm {self.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        if not self.key:
            raise ValueError("the token signing key is empty: set the secret or private key")

    def __repr__(self) -> str:
        return f"TokenSigner(issuer={self.issuer!r}, algorithm={self.algorithm!r})"

    def sign(self, user_id: str, email: str) -> str:
        # No `exp`: the service accepts tokens without one, and a 10-minute test must not
        # see its identities expire half-way.
        with warnings.catch_warnings():
            # The development secret is shorter than PyJWT recommends; the service uses it as is.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.encode({"iss": self.issuer, "id": user_id, "email": email}, self.key, algorithm=self.algorithm)


def build_identities(dataset: Dataset, ids: SeededIds, signer: TokenSigner) -> list[dict]:
    classes_of: dict[str, list[str]] = {}
    for membership in (dataset.students_of, dataset.teachers_of):
        for class_key, user_keys in membership.items():
            for user_key in user_keys:
                classes_of.setdefault(user_key, []).append(ids.classes[class_key])
    identities = []
    for user in dataset.users:
        if user.role not in (STUDENT, TEACHER):
            continue
        user_id = ids.users[user.key]
        identities.append({
            "user_id": user_id,
            "role": user.role,
            "email": user.email,
            "organization_id": ids.organizations[user.organization],
            "school_id": ids.schools[dataset.school_of[user.key]],
            "class_ids": classes_of.get(user.key, []),
            "token": signer.sign(user_id, user.email),
        })
    return identities


def write_identities(path: Path, identities: list[dict], dataset_hash: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"version": 1, "dataset_hash": dataset_hash, "identities": identities}, f)
    tmp.replace(path)
    return path
