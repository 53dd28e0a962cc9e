"""Identities for k6: one signed token per seeded student, teacher, org admin and school admin.

Each identity: user_id, role ("student", "teacher", "org_admin" or "school_admin"), email,
organization_id, school_id (null for an org admin), class_ids (empty for admins) and token.
Organization owners get none.

The file holds tokens, so it is written readable by its owner only (through a fresh
temporary file: nothing already in the folder decides its mode or where it goes), and nothing
derived from it (logs, metadata, the manifest) carries a token. Tokens expire (`exp`), so a
leaked file stops working.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from ult_pipeline.secrets import private_file
from ult_pipeline.seeding.dataset import ORG_ADMIN, SCHOOL_ADMIN, STUDENT, TEACHER, Dataset
from ult_pipeline.seeding.seeder import SeededIds

# The user-service's development issuer (accepted when it runs with NODE_ENV=development).
DEV_ISSUER = "calmid-debug"
DEV_SECRET = "iXtZx1D5AqEB0B9pfn+hRQ=="
ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512")
# A day: far beyond a load test and its A/B re-runs (identities are signed afresh at every
# seeding), short enough that a copied identities file soon stops working.
DEFAULT_LIFETIME_S = 86_400
# The roles that get an identity, as written in the file (k6/lib/identities.js reads them).
IDENTITY_ROLES = (STUDENT, TEACHER, ORG_ADMIN, SCHOOL_ADMIN)


@dataclass(frozen=True)
class TokenSigner:
    """Signs user tokens as the auth service does. `lifetime_s`: seconds from signing to `exp`.

    Raises ValueError for an unknown algorithm, an empty key or a lifetime that is not a
    positive whole number of seconds.
    """

    issuer: str = DEV_ISSUER
    algorithm: str = "HS256"
    key: str = DEV_SECRET
    lifetime_s: int = DEFAULT_LIFETIME_S

    def __post_init__(self) -> None:
        if isinstance(self.lifetime_s, bool) or not isinstance(self.lifetime_s, int) or self.lifetime_s <= 0:
            raise ValueError(f"token lifetime_s must be a positive number of seconds, not {self.lifetime_s!r}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"token algorithm {self.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        if not self.key:
            raise ValueError("the token signing key is empty: set the secret or private key")

    def __repr__(self) -> str:
        return f"TokenSigner(issuer={self.issuer!r}, algorithm={self.algorithm!r}, lifetime_s={self.lifetime_s!r})"

    def sign(self, user_id: str, email: str, *, now: float | None = None) -> str:
        """A JWT with `iss`, `id`, `email` and `exp` (`now`, default the current time, + lifetime_s)."""
        issued = int(time.time() if now is None else now)
        claims = {"iss": self.issuer, "id": user_id, "email": email, "exp": issued + self.lifetime_s}
        with warnings.catch_warnings():
            # The development secret is shorter than PyJWT recommends; the service uses it as is.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.encode(claims, self.key, algorithm=self.algorithm)


def build_identities(dataset: Dataset, ids: SeededIds, signer: TokenSigner) -> list[dict]:
    classes_of: dict[str, list[str]] = {}
    for membership in (dataset.students_of, dataset.teachers_of):
        for class_key, user_keys in membership.items():
            for user_key in user_keys:
                classes_of.setdefault(user_key, []).append(ids.classes[class_key])
    identities = []
    for user in dataset.users:
        if user.role not in IDENTITY_ROLES:
            continue
        user_id = ids.users[user.key]
        school = dataset.school_of.get(user.key)  # none for an org admin
        identities.append({
            "user_id": user_id,
            "role": user.role,
            "email": user.email,
            "organization_id": ids.organizations[user.organization],
            "school_id": ids.schools[school] if school is not None else None,
            "class_ids": classes_of.get(user.key, []),
            "token": signer.sign(user_id, user.email),
        })
    return identities


def write_identities(path: Path, identities: list[dict], dataset_hash: str) -> Path:
    """Write ``{"version": 1, "dataset_hash", "identities"}`` to `path`, mode 0600, atomically.

    A fresh temporary file (mkstemp, 0600 before the first byte) is renamed over `path`: an
    existing `identities.tmp`, or a symlink at either name, is never written through. Raises OSError.
    """
    with private_file(path) as f:
        json.dump({"version": 1, "dataset_hash": dataset_hash, "identities": identities}, f)
    return path
