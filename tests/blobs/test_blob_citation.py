"""Citing a blob in a record needs the right to read it: a digest learnt from another project's record
opens nothing, and is refused exactly like one that was never uploaded."""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

from tests.conftest import Api, World
from tests.factories import criteria_body, prompt
from tests.uploads.test_uploads import _send, _start

SIZE = 4099  # a size that appears nowhere else in an answer, so that a leak of it shows


def _upload(api: Api, data: bytes | None = None) -> str:
    response = api.post("/v1/blobs", content=data if data is not None else os.urandom(SIZE))
    assert response.status_code in (200, 201), response.text
    return str(response.json()["digest"])


def _base_model(api: Api, project: str, digest: str, name: str = "base") -> Any:
    files = [{"path": "model.safetensors", "digest": digest, "size": SIZE}]
    return api.post(f"/v1/projects/{project}/base-models", json={"name": name, "spec": {"files": files}})


def _refused(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == "blob_missing"
    facts = re.sub(r"sha256:[0-9a-f]{64}", "D", response.text)  # a digest's hex may hold any digits
    assert "size" not in facts and str(SIZE) not in facts
    return body


class Projects:
    """alpha, where a trainer registered a base model from a blob it uploaded; beta, a project of its own."""

    def __init__(self, world: World) -> None:
        self.alpha = world.project()
        self.beta = world.project()
        self.alpha_trainer = world.member(self.alpha, "trainer")
        self.beta_trainer = world.member(self.beta, "trainer")
        self.digest = _upload(self.alpha_trainer)
        assert _base_model(self.alpha_trainer, self.alpha, self.digest).status_code == 201


def test_a_digest_from_another_project_is_refused_like_a_missing_one(world: World) -> None:
    p = Projects(world)
    assert p.beta_trainer.get(f"/v1/blobs/{p.digest}").status_code == 404
    attack = _refused(_base_model(p.beta_trainer, p.beta, p.digest))
    never = "sha256:" + hashlib.sha256(os.urandom(32)).hexdigest()
    missing = _refused(_base_model(p.beta_trainer, p.beta, never))
    assert json.dumps(attack).replace(p.digest, "D") == json.dumps(missing).replace(never, "D")
    assert p.beta_trainer.get(f"/v1/blobs/{p.digest}").status_code == 404
    assert p.beta_trainer.request("HEAD", f"/v1/blobs/{p.digest}").status_code == 404


def test_the_uploader_cites_its_own_blob_anywhere_it_writes(world: World) -> None:
    p = Projects(world)
    own = _upload(p.beta_trainer)
    assert _base_model(p.beta_trainer, p.beta, own).status_code == 201
    # uploading the same bytes proves holding them: the second uploader may cite them too
    data = os.urandom(SIZE)
    _upload(p.alpha_trainer, data)
    assert _upload(p.beta_trainer, data) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert _base_model(p.beta_trainer, p.beta, "sha256:" + hashlib.sha256(data).hexdigest(), "b2").status_code == 201


def test_an_upload_does_not_tell_whether_someone_else_stored_the_bytes(world: World) -> None:
    """201 means new to this uploader, never new to the store: 200 would tell a guesser that another
    project holds the content. The same uploader sending it again is 200, by either route."""
    p = Projects(world)
    data = os.urandom(SIZE)
    assert p.alpha_trainer.post("/v1/blobs", content=data).status_code == 201
    assert p.beta_trainer.post("/v1/blobs", content=data).status_code == 201
    assert p.beta_trainer.post("/v1/blobs", content=data).status_code == 200
    assert p.alpha_trainer.post("/v1/blobs", content=data).status_code == 200
    stranger = world.member(world.project(), "trainer")
    session = _start(stranger, data)
    _send(stranger, session, data)
    done = stranger.post(f"/v1/blobs/uploads/{session['upload_id']}/complete")
    assert done.status_code == 201, done.text
    assert stranger.post("/v1/blobs", content=data).status_code == 200


def test_a_viewer_of_the_citing_record_may_cite_it_elsewhere(world: World) -> None:
    p = Projects(world)
    both = world.member(p.alpha, "viewer")
    response = world.admin.put(f"/v1/projects/{p.beta}/members/{both.principal}", json={"role": "trainer"})
    assert response.status_code == 200
    assert both.get(f"/v1/blobs/{p.digest}").status_code == 200
    assert _base_model(both, p.beta, p.digest).status_code == 201


def test_a_global_admin_cites_any_blob(world: World) -> None:
    p = Projects(world)
    unreferenced = _upload(p.alpha_trainer)
    _refused(_base_model(p.beta_trainer, p.beta, unreferenced))
    assert _base_model(world.admin, p.beta, unreferenced).status_code == 201


def test_evidence_blob_needs_the_right_to_read_it(world: World) -> None:
    p = Projects(world)
    base = _base_model(p.beta_trainer, p.beta, _upload(p.beta_trainer)).json()

    def evaluation(digest: str) -> Any:
        spec = {"type": "human_preference", "summary": {"win_rate": 0.6}, "evidence_blob": digest}
        body = {"name": "eval", "target": {"id": base["id"]}, "spec": spec}
        return p.beta_trainer.post(f"/v1/projects/{p.beta}/evaluations", json=body)

    _refused(evaluation(_upload(p.alpha_trainer)))
    assert evaluation(_upload(p.beta_trainer)).status_code == 201


def test_prompts_blob_needs_the_right_to_read_it(world: World) -> None:
    p = Projects(world)
    alpha_annotator = world.member(p.alpha, "annotator")
    beta_annotator = world.member(p.beta, "annotator")
    assert world.admin.post(f"/v1/projects/{p.beta}/criteria", json=criteria_body()).status_code == 201
    data = "".join(json.dumps(prompt(f"q{i}")) + "\n" for i in range(20)).encode()

    def prompt_set(digest: str) -> Any:
        body = {"name": "prompts", "version": "1.0.0", "spec": {"sampling_procedure": "s", "prompts_blob": digest}}
        return beta_annotator.post(f"/v1/projects/{p.beta}/prompt-sets", json=body)

    foreign = _upload(alpha_annotator, data)
    response = prompt_set(foreign)
    assert response.status_code == 422 and response.json()["code"] == "blob_missing"
    assert _upload(beta_annotator, data) == foreign  # the same bytes, uploaded by the citer
    assert prompt_set(foreign).status_code == 201


def test_a_run_input_needs_the_right_to_read_it(world: World) -> None:
    p = Projects(world)

    def score(digest: str) -> Any:
        body = {
            "kind": "score",
            "inputs": {"reward_checkpoint": {"name": "rm", "version": "1"}, "outputs_blob": digest},
        }
        return p.beta_trainer.post(f"/v1/projects/{p.beta}/runs", json=body)

    attack = _refused(score(p.digest))
    never = "sha256:" + hashlib.sha256(os.urandom(32)).hexdigest()
    missing = _refused(score(never))
    assert json.dumps(attack).replace(p.digest, "D") == json.dumps(missing).replace(never, "D")
    # a blob the trainer uploaded passes this check and meets the next: beta has no reward checkpoint
    assert score(_upload(p.beta_trainer)).json()["code"] == "missing_reference"
