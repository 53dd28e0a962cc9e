import json
import os
import stat
import time

import jwt
import pytest

from ult_pipeline.sandbox_service.auth import AuthError, verify_jwt
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
    assert len(identities) == 109
    assert {i["role"] for i in identities} == {"student", "teacher", "org_admin", "school_admin"}
    student = next(i for i in identities if i["role"] == "student")
    claims = jwt.decode(student["token"], DEV_SECRET, algorithms=["HS256"])
    assert claims.pop("exp") - time.time() == pytest.approx(86_400, abs=600)
    assert claims == {"iss": "calmid-debug", "id": student["user_id"], "email": student["email"]}
    assert len(student["class_ids"]) == 1 and student["school_id"].startswith("school-")

    path = write_identities(tmp_path / "ids.json", identities, dataset.content_hash())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["dataset_hash"] == dataset.content_hash()


def test_org_and_school_admins_get_tokens_and_their_scope():
    dataset = generate(PROFILES["standard"], 1)
    identities = build_identities(dataset, _fake_ids(dataset), TokenSigner())
    org_admins = [i for i in identities if i["role"] == "org_admin"]
    school_admins = [i for i in identities if i["role"] == "school_admin"]
    assert len(org_admins) == 2 and len(school_admins) == 10
    fields = {"user_id", "role", "email", "organization_id", "school_id", "class_ids", "token"}
    for identity in org_admins + school_admins:
        assert set(identity) == fields
        assert identity["organization_id"] == "org-o0" and identity["class_ids"] == []
        claims = jwt.decode(identity["token"], DEV_SECRET, algorithms=["HS256"])
        assert (claims["id"], claims["email"]) == (identity["user_id"], identity["email"])
    assert all(i["school_id"] is None for i in org_admins)
    assert sorted(i["school_id"] for i in school_admins) == sorted(f"school-{s.key}" for s in dataset.schools)
    # The owner has no identity; everyone else has exactly one.
    owner = _fake_ids(dataset).users[dataset.organizations[0].owner]
    assert owner not in {i["user_id"] for i in identities}
    assert len(identities) == len({i["user_id"] for i in identities}) == len(dataset.users) - 1


def test_signer_rejects_unknown_algorithms_and_hides_its_key():
    with pytest.raises(ValueError, match="HS999"):
        TokenSigner(algorithm="HS999")
    assert DEV_SECRET not in repr(TokenSigner())
    token = TokenSigner(algorithm="HS512").sign("u1", "a@b.c")
    assert jwt.get_unverified_header(token)["alg"] == "HS512"


def test_tokens_expire_after_their_lifetime_and_the_sandbox_refuses_them_then():
    # The sandbox service decides as the real one does: a token past its `exp` is refused.
    signer = TokenSigner(lifetime_s=60)
    token = signer.sign("u1", "a@b.c", now=1_000_000)
    assert jwt.decode(token, options={"verify_signature": False})["exp"] == 1_000_060
    assert verify_jwt(token, now=1_000_059).identity.user_id == "u1"
    with pytest.raises(AuthError, match="jwt expired"):
        verify_jwt(token, now=1_000_060)
    # Positional construction (the pipeline's TokenSignerResource) keeps the one-day default.
    assert TokenSigner("calmid-debug", "HS256", DEV_SECRET).lifetime_s == 86_400


@pytest.mark.parametrize("lifetime", [0, -1, 1.5, True, "60"])
def test_a_lifetime_must_be_a_positive_number_of_seconds(lifetime):
    with pytest.raises(ValueError, match="lifetime_s"):
        TokenSigner(lifetime_s=lifetime)


def test_the_tokens_file_is_private_whatever_was_planted_beside_it(tmp_path):
    # An `identities.tmp` left world-readable, and one that is a symlink to someone else's
    # file: neither decides the mode of the tokens file, and nothing is written through a link.
    victim = tmp_path / "elsewhere.txt"
    victim.write_text("untouched")
    os.chmod(victim, 0o644)
    for planted in ("plain", "symlink"):
        folder = tmp_path / planted
        folder.mkdir()
        tmp = folder / "identities.tmp"
        if planted == "plain":
            tmp.write_text("{}")
            os.chmod(tmp, 0o644)
        else:
            tmp.symlink_to(victim)
        path = write_identities(folder / "identities.json", [{"token": "t0ken"}], "h")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, planted
        assert json.loads(path.read_text())["identities"] == [{"token": "t0ken"}]
    assert victim.read_text() == "untouched" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    # A symlink at the destination itself is replaced, not followed.
    linked = tmp_path / "linked.json"
    linked.symlink_to(victim)
    write_identities(linked, [{"token": "t0ken"}], "h")
    assert not linked.is_symlink() and stat.S_IMODE(linked.stat().st_mode) == 0o600
    assert victim.read_text() == "untouched"
