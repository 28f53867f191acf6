"""Hub: the upload folder loads with `datasets`, the card, and the push sequence against a fake Hub
at huggingface_hub's HTTP boundary (its httpx client): retries, auth errors, tags, and the token
never leaving the Authorization header."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import datasets
import huggingface_hub
import pytest
import yaml
from huggingface_hub import constants
from known_output import make_output

from apsgen.cli.main import main
from apsgen.hub.folder import build_hub_folder
from apsgen.hub.push import HubAuthError, push

TOKEN = "hf_SECRETtokenNEVERshown0123456789"
REPO = "test-org/omegaprm-toy"
CONFIGS = ["steps", "problems", "math-aps", "math-shepherd", "stepwise", "qwen-prm"]


class FakeHub:
    """Just enough of the Hub's HTTP API for create_repo, upload_folder (non-xet path), refs and tags."""

    def __init__(self):
        self.files: dict[str, bytes] = {".gitattributes": b"*.parquet filter=lfs\n"}
        self.commits: list[str] = []  # commit messages, in order
        self.tags: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.auth_headers: set[str] = set()
        self.fail: dict[str, list[int]] = {}  # endpoint name -> statuses to answer first
        self.created_private: bool | None = None
        self.leaks = 0

    def _fail(self, name: str):
        import httpx2

        queue = self.fail.get(name)
        if queue:
            status = queue.pop(0)
            return httpx2.Response(status, headers={"Retry-After": "0"}, json={"error": f"fake {status}"})
        return None

    def handler(self, request):
        import httpx2

        path = request.url.path
        self.requests.append((request.method, path))
        if path.startswith(("/api/datasets/", "/api/repos/")):
            self.auth_headers.add(request.headers.get("authorization", ""))
        # Anywhere but the Authorization header (URL, body) the token must never appear.
        self.leaks += TOKEN in str(request.url) or TOKEN.encode() in request.content
        prefix = f"/api/datasets/{REPO}"
        if path == "/api/repos/create":
            if (r := self._fail("create")) is not None:
                return r
            body = json.loads(request.content)
            self.created_private = body.get("visibility") == "private" or body.get("private") is True
            return httpx2.Response(200, json={"url": f"https://huggingface.co/datasets/{REPO}", "name": REPO})
        if path == "/api/validate-yaml":  # the Hub checks a README's metadata before a commit
            body = json.loads(request.content)
            yaml.safe_load(body["content"].split("---")[1])
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        if path.startswith(f"{prefix}/preupload/"):
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        if path.startswith(f"{prefix}/tree/"):
            items = [{"type": "file", "path": p, "oid": "0" * 40, "size": len(b)} for p, b in sorted(self.files.items())]
            return httpx2.Response(200, json=items)
        if path.startswith(f"{prefix}/commit/"):
            if (r := self._fail("commit")) is not None:
                return r
            for line in request.content.decode().splitlines():
                op = json.loads(line)
                if op["key"] == "header":
                    self.commits.append(op["value"]["summary"])
                elif op["key"] == "file":
                    self.files[op["value"]["path"]] = base64.b64decode(op["value"]["content"])
                elif op["key"] == "deletedFile":
                    self.files.pop(op["value"]["path"], None)
            oid = f"{len(self.commits):040x}"
            return httpx2.Response(200, json={"commitUrl": f"https://huggingface.co/datasets/{REPO}/commit/{oid}",
                                              "commitOid": oid})
        if path == f"{prefix}/refs":
            return httpx2.Response(200, json={"branches": [], "converts": [], "tags": [
                {"name": t, "ref": f"refs/tags/{t}", "targetCommit": c} for t, c in self.tags.items()]})
        if path.startswith(f"{prefix}/tag/") and request.method == "DELETE":
            self.tags.pop(path.rsplit("/", 1)[-1], None)
            return httpx2.Response(200, json={})
        if path.startswith(f"{prefix}/tag/"):
            body = json.loads(request.content)
            self.tags[body["tag"]] = path.rsplit("/", 1)[-1]
            return httpx2.Response(200, json={})
        return httpx2.Response(404, json={"error": f"fake hub: no route {request.method} {path}"})


@pytest.fixture
def fake_hub(monkeypatch):
    import httpx2

    hub = FakeHub()
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # The non-xet path: every byte goes through huggingface_hub's own httpx client, which we fake.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub.handler)))
    yield hub
    huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)


@pytest.fixture
def known(tmp_path):
    return make_output(tmp_path / "out")


def test_folder_loads_with_datasets_using_the_cards_configs(known, tmp_path):
    folder = build_hub_folder(known, tmp_path / "hub", repo_id=REPO)
    meta = yaml.safe_load((folder.path / "README.md").read_text().split("---")[1])
    assert [c["config_name"] for c in meta["configs"]] == CONFIGS
    assert datasets.get_dataset_config_names(str(folder.path)) == CONFIGS
    rows = {c: datasets.load_dataset(str(folder.path), c, split="train") for c in CONFIGS}
    assert rows["steps"].num_rows == 7 and rows["problems"].num_rows == 2
    assert rows["stepwise"]["completions"][1] == ["A", "G"]
    assert rows["math-aps"].num_rows == 6
    # The default config is the canonical one.
    assert datasets.load_dataset(str(folder.path), split="train").num_rows == 7


def test_card_states_provenance_stats_spec_and_reproduce(known, tmp_path):
    card = (build_hub_folder(known, tmp_path / "hub", repo_id=REPO).path / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["license"] == "apache-2.0" and "process-reward-model" in meta["tags"]
    assert meta["task_categories"]
    for needle in ("`toy-model`", "apsgen.verify 1", "| stored states | 7 (6 with an MC value) |",
                   "of which 1 correct solutions",
                   "| positive / negative (MC > 0.5) | 3 / 3 |", "## Job spec", "apsgen run job.yaml",
                   "no_answer 16", "MC > 0.5"):
        assert needle in card, needle


def test_dry_run_builds_the_folder_and_uploads_nothing(known, tmp_path, fake_hub, capsys):
    assert main(["push", known, "--repo-id", REPO, "--dry-run", str(tmp_path / "dry")]) == 0
    assert "nothing uploaded" in capsys.readouterr().out
    assert fake_hub.requests == []
    assert (tmp_path / "dry" / "data" / "stepwise" / "part-00000.parquet").is_file()


def test_push_uploads_the_folder_with_retries_then_tags(known, tmp_path, fake_hub, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    fake_hub.files["data/steps/part-00099.parquet"] = b"stale shard of an earlier build"
    fake_hub.fail = {"create": [503], "commit": [429, 502]}
    slept: list[float] = []
    result = push(known, REPO, tag="build-20260102", build="2026-01-02", sleep=slept.append, backoff_s=0.01)

    expected = build_hub_folder(known, tmp_path / "expected", repo_id=REPO, build="2026-01-02")
    uploaded = {p: b for p, b in fake_hub.files.items() if p != ".gitattributes"}
    assert sorted(uploaded) == expected.files  # the stale shard is gone, nothing else added
    for rel in expected.files:
        assert uploaded[rel] == (expected.path / rel).read_bytes(), rel
    assert len(fake_hub.commits) == 1 and "2026-01-02" in fake_hub.commits[0]
    assert len(slept) == 3  # one 503 on create, a 429 and a 502 on the commit
    assert fake_hub.tags == {"build-20260102": result.commit}
    assert fake_hub.created_private is True  # the job spec's hub.private default

    # The token only ever travels in the Authorization header.
    assert fake_hub.auth_headers == {f"Bearer {TOKEN}"} and fake_hub.leaks == 0
    out = capsys.readouterr()
    assert TOKEN not in caplog.text + out.out + out.err + result.render()
    for f in list(Path(known).rglob("*")) + list(expected.path.rglob("*")):
        if f.is_file():
            assert TOKEN.encode() not in f.read_bytes(), f


def test_repush_is_idempotent_and_moves_the_tag(known, fake_hub):
    first = push(known, REPO, tag="build-20260102", sleep=lambda s: None)
    files = dict(fake_hub.files)
    second = push(known, REPO, tag="build-20260102", sleep=lambda s: None)
    assert fake_hub.files == files
    assert fake_hub.tags == {"build-20260102": second.commit}
    assert first.files == second.files


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_name_the_repo_and_how_to_log_in(known, fake_hub, status, capsys):
    fake_hub.fail = {"create": [status]}
    with pytest.raises(HubAuthError) as err:
        push(known, REPO, sleep=lambda s: None)
    msg = str(err.value)
    assert REPO in msg and "hf auth login" in msg and "HF_TOKEN" in msg and str(status) in msg
    assert TOKEN not in msg
    fake_hub.fail = {"create": [status]}
    assert main(["push", known, "--repo-id", REPO]) == 2
    err_text = capsys.readouterr().err
    assert REPO in err_text and TOKEN not in err_text
    assert fake_hub.commits == []


def test_bad_repo_id_is_named(known, capsys):
    assert main(["push", known, "--repo-id", "no-slash"]) == 2
    assert "'no-slash' is not a Hub repo id" in capsys.readouterr().err


def test_a_first_part_with_only_skipped_problems_still_loads(tmp_path):
    # The demo's case: the first flush held only skipped problems, so its step shard has 0 rows.
    from apsgen.io.store import OutputStore
    from test_export import KNOWN_TREE, problem

    out = make_output(tmp_path / "out", [], [problem("p0", "skipped", "all_wrong")])
    OutputStore(out).write_part(1, KNOWN_TREE, [problem("p1", n_steps=len(KNOWN_TREE))])
    folder = build_hub_folder(out, tmp_path / "hub")
    assert "steps" in folder.configs
    for config in folder.configs:
        assert datasets.load_dataset(str(folder.path), config, split="train").num_rows > 0
    assert datasets.load_dataset(str(folder.path), "problems", split="train").num_rows == 2


def test_a_config_without_rows_is_left_out_not_shipped_empty(tmp_path):
    from test_export import problem

    out = make_output(tmp_path / "out", [], [problem("p0", "skipped", "all_wrong")])
    folder = build_hub_folder(out, tmp_path / "hub")
    assert folder.configs == ["problems"]
    assert datasets.load_dataset(str(folder.path), "problems", split="train").num_rows == 1
    card = (folder.path / "README.md").read_text()
    assert "config_name: steps" not in card
