import json
import stat

import jwt
import pytest

from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.identities import DEV_SECRET, TokenSigner, build_identities, write_identities
from ult_pipeline.seeding.profiles import PROFILES
from ult_pipeline.seeding.seeder import SeededIds


def _fake_ids(dataset):
    # Stand-ins for the ids the service assigns, for the pure mapping only.
    return SeededIds(
        users={u.key: f"user-{u.key}" for u in dataset.users},
        organizations={o.key: f"org-{o.key}" for o in dataset.organizations},
        schools={s.key: f"school-{s.key}" for s in dataset.schools},
        classes={c.key: f"class-{c.key}" for c in dataset.classes},
    )


def test_every_student_and_teacher_gets_a_verifiable_token(tmp_path):
    dataset = generate(PROFILES["tiny"], 1)
    identities = build_identities(dataset, _fake_ids(dataset), TokenSigner())
    assert len(identities) == 105
    assert {i["role"] for i in identities} == {"student", "teacher"}
    student = next(i for i in identities if i["role"] == "student")
    claims = jwt.decode(student["token"], DEV_SECRET, algorithms=["HS256"])
    assert claims == {"iss": "calmid-debug", "id": student["user_id"], "email": student["email"]}
    assert len(student["class_ids"]) == 1 and student["school_id"].startswith("school-")

    path = write_identities(tmp_path / "ids.json", identities, dataset.content_hash())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["dataset_hash"] == dataset.content_hash()


def test_signer_rejects_unknown_algorithms_and_hides_its_key():
    with pytest.raises(ValueError, match="HS999"):
        TokenSigner(algorithm="HS999")
    assert DEV_SECRET not in repr(TokenSigner())
    token = TokenSigner(algorithm="HS512").sign("u1", "a@b.c")
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
