"""`push`: one build to a Hub dataset repo as one logical commit series, with retries and a tag.

The folder is built by `build_hub_folder` and sent with a single `HfApi.upload_folder` call: with
hf_xet (the default) huggingface_hub commits a large folder in several batches ("msg", "msg (part
2)", ...) and a re-run resumes it; remote data files the build no longer has are deleted in the
same series. Only rate limits (429), server errors (5xx) and dropped connections are retried, with
exponential backoff; a refused login (401/403) stops at once with what to do.

The token is whatever huggingface_hub finds (HF_TOKEN, then the local credential store); this
module never reads it, so it cannot leak it into logs, the card or the manifest.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from apsgen.hub.folder import build_hub_folder
from apsgen.io.export import DEFAULT_THRESHOLD

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUS = {429, 500, 502, 503, 504}
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class HubError(RuntimeError):
    """A push that failed; the message names the repo and what to do."""


class HubAuthError(HubError):
    pass


@dataclass
class PushResult:
    repo_id: str
    revision: str
    commit: str | None
    tag: str | None
    files: int
    url: str

    def render(self) -> str:
        tag = f", tagged {self.tag}" if self.tag else ""
        return f"pushed {self.files} files to dataset {self.repo_id} ({self.revision} @ {self.commit}{tag}): {self.url}"


def check_repo_id(repo_id: str) -> str:
    if not _REPO_ID.match(repo_id or ""):
        raise HubError(f"--repo-id {repo_id!r} is not a Hub repo id; write it as ORG/NAME, e.g. my-org/omegaprm-math")
    return repo_id


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def _retry_after(err: BaseException) -> float | None:
    response = getattr(err, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def with_retries(
    call: Callable[[], T],
    *,
    what: str,
    repo_id: str,
    max_retries: int = 5,
    backoff_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run one Hub call; retry rate limits, server errors and dropped connections with backoff."""
    from huggingface_hub.errors import HfHubHTTPError

    for attempt in range(max_retries + 1):
        try:
            return call()
        except HfHubHTTPError as e:
            status = _status(e)
            if status in (401, 403):
                raise HubAuthError(
                    f"the Hub refused {what} on dataset repo {repo_id} (HTTP {status}). Log in with "
                    f"`hf auth login`, or set HF_TOKEN, using a token with write access to {repo_id}"
                    + (" (the organisation must also let you create repos)" if what == "creating the repo" else "")
                ) from None
            if status not in RETRY_STATUS or attempt == max_retries:
                raise HubError(f"{what} on dataset repo {repo_id} failed (HTTP {status}): {e}") from e
            delay = _retry_after(e) or backoff_s * 2**attempt
        except (ConnectionError, TimeoutError) as e:
            if attempt == max_retries:
                raise HubError(f"{what} on dataset repo {repo_id} failed: {e}") from e
            delay, status = backoff_s * 2**attempt, type(e).__name__
        delay = min(delay, 300.0)
        log.warning("%s on %s: %s, retry %d/%d in %.0fs", what, repo_id, status, attempt + 1, max_retries, delay)
        sleep(delay)
    raise AssertionError("unreachable")


def _tag(api: Any, repo_id: str, tag: str, commit: str, call: Callable[..., Any]) -> None:
    """Point `tag` at `commit`: created, or moved when a resumed build made a new commit."""
    refs = call(lambda: api.list_repo_refs(repo_id, repo_type="dataset"), what="listing tags")
    current = next((t.target_commit for t in refs.tags if t.name == tag), None)
    if current == commit:
        return
    if current is not None:
        call(lambda: api.delete_tag(repo_id, tag=tag, repo_type="dataset"), what=f"moving tag {tag}")
    call(
        lambda: api.create_tag(repo_id, tag=tag, revision=commit, repo_type="dataset", exist_ok=True),
        what=f"creating tag {tag}",
    )


def push(
    output: str,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    tag: str | None = None,
    formats: list[str] | None = None,
    threshold: float | None = DEFAULT_THRESHOLD,
    correct_paths: bool = True,
    build: str | None = None,
    commit_message: str | None = None,
    api: Any = None,
    max_retries: int = 5,
    backoff_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> PushResult:
    """Build the upload folder for `output` and push it to the dataset repo `repo_id`."""
    from huggingface_hub import HfApi

    check_repo_id(repo_id)
    api = api or HfApi()
    branch = revision or "main"

    def call(fn: Callable[[], T], *, what: str) -> T:
        return with_retries(fn, what=what, repo_id=repo_id, max_retries=max_retries, backoff_s=backoff_s, sleep=sleep)

    with tempfile.TemporaryDirectory(prefix="apsgen-push-") as tmp:
        folder = build_hub_folder(output, tmp, formats=formats, threshold=threshold, repo_id=repo_id, build=build,
                                  correct_paths=correct_paths)
        if private is None:
            from apsgen.io.store import OutputStore

            manifest = OutputStore(output).read_manifest()
            private = bool(((manifest.spec if manifest else {}).get("hub") or {}).get("private", True))
        call(lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True),
             what="creating the repo")
        if branch != "main":
            call(lambda: api.create_branch(repo_id, branch=branch, repo_type="dataset", exist_ok=True),
                 what=f"creating branch {branch}")
        message = commit_message or f"apsgen: {build or 'build'} ({len(folder.files)} files)"
        log.info("pushing %d files to dataset %s (%s)", len(folder.files), repo_id, branch)
        info = call(
            lambda: api.upload_folder(
                repo_id=repo_id,
                repo_type="dataset",
                folder_path=str(folder.path),
                revision=branch,
                commit_message=message,
                # Data files an earlier build had and this one does not: gone in the same series.
                delete_patterns=["data/**"],
            ),
            what="uploading the build",
        )
    commit = getattr(info, "oid", None)
    if tag:
        _tag(api, repo_id, tag, commit or branch, call)
    url = f"https://huggingface.co/datasets/{repo_id}/tree/{tag or branch}"
    return PushResult(repo_id=repo_id, revision=branch, commit=commit, tag=tag, files=len(folder.files), url=url)
