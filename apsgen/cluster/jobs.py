"""The Ray Jobs API wrapper behind `apsgen submit / status --job-id / logs / stop`.

A submission runs `apsgen run JOB.yaml` (or `apsgen nightly JOB.yaml`) as the job's driver on the
head node, with this project folder as the working directory. Its id is stable,
`<job>-<YYYYMMDD>`, so a second submission of the same job the same day is recognised: refused
while the first still runs (two drivers must never write one output), and once it has ended
submitted as the next attempt, `<id>-r2`, `-r3`..., which resumes from the output's manifest.
(Reusing the very same id is not safe: Ray's monitor of the old attempt can still mark the new
one failed as its supervisor exits.) Commands given the base id act on its latest attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TERMINAL = {"STOPPED", "SUCCEEDED", "FAILED"}
# Never uploaded with the working directory: environments, outputs, caches, version control.
UPLOAD_EXCLUDES = ["/.venv", "/venv", "/.git", "/out", "__pycache__", "*.pyc", ".pytest_cache", "*.egg-info"]


class ClusterError(RuntimeError):
    """A submission or job query that cannot go ahead; the message says what to do."""


def resolve_address(address: str | None) -> str:
    """The head's Jobs API address: --address, else RAY_API_SERVER_ADDRESS, else an http RAY_ADDRESS."""
    if address:
        if not address.startswith(("http://", "https://")):
            raise ClusterError(f"--address {address!r}: expected the head's dashboard URL, e.g. http://HEAD:8265")
        return address.rstrip("/")
    for name in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
        value = os.environ.get(name, "")
        if value.startswith(("http://", "https://")):
            return value.rstrip("/")
    raise ClusterError(
        "no cluster address: pass --address http://HEAD:8265 (the head's dashboard port) or set RAY_API_SERVER_ADDRESS"
    )


def client(address: str | None) -> Any:
    from ray.job_submission import JobSubmissionClient

    url = resolve_address(address)
    try:
        return JobSubmissionClient(url)
    except Exception as e:  # connection refused, auth, version mismatch: say which cluster
        raise ClusterError(f"cannot reach the Ray Jobs API at {url}: {e}") from None


def submission_id(job: str, *, nightly: bool = False, day: dt.date | None = None) -> str:
    day = day or dt.datetime.now(dt.timezone.utc).date()
    return f"{job}-{'nightly-' if nightly else ''}{day:%Y%m%d}"


def extra_requirements(extras: list[str]) -> list[str]:
    """The pip requirements of apsgen's optional extras (e.g. `vllm`), read from its metadata."""
    try:
        requires = importlib_metadata.requires("apsgen") or []
    except importlib_metadata.PackageNotFoundError:
        raise ClusterError("apsgen is not installed here, so its extras are unknown; pass --extras ''") from None
    out: list[str] = []
    for extra in extras:
        marker = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
        found = [r.split(";")[0].strip() for r in requires if ";" in r and marker.search(r.split(";", 1)[1])]
        if not found:
            raise ClusterError(f"apsgen has no extra {extra!r}; pass --extras with some of: vllm, cpu, models, dev")
        out += found
    return out


@dataclass
class Submission:
    job_file: str
    job_name: str
    working_dir: str
    overrides: list[str] = field(default_factory=list)
    output: str | None = None
    nightly: bool = False
    new_version: bool = False
    verbose: bool = False
    extras: list[str] = field(default_factory=lambda: ["vllm"])
    env_vars: dict[str, str] = field(default_factory=dict)
    spec_output: str | None = None  # the spec's own `output`, when --output does not replace it

    def job_path_in_working_dir(self) -> str:
        wd, job = Path(self.working_dir).resolve(), Path(self.job_file).resolve()
        try:
            return job.relative_to(wd).as_posix()
        except ValueError:
            raise ClusterError(
                f"job spec {self.job_file} is outside the working directory {wd} that is uploaded; "
                f"move it under {wd} or pass --working-dir"
            ) from None

    def entrypoint(self) -> str:
        # `python -m` rather than the console script: the uploaded working directory is on
        # PYTHONPATH even where the node's apsgen is older or absent.
        argv = ["python", "-m", "apsgen.cli.main"] + (["-v"] if self.verbose else [])
        argv += ["nightly" if self.nightly else "run", self.job_path_in_working_dir()]
        sets = list(self.overrides) + ([f"output={self.output}"] if self.output else [])
        for item in sets:
            argv += ["--set", item]
        argv.append("--no-progress")  # a bar in a log file is noise
        if self.new_version and not self.nightly:
            argv.append("--new-version")
        return shlex.join(argv)

    def runtime_env(self) -> dict[str, Any]:
        env: dict[str, Any] = {
            "working_dir": str(Path(self.working_dir).resolve()),
            "excludes": UPLOAD_EXCLUDES,
            "env_vars": {"RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1", **self.env_vars},
        }
        pip = extra_requirements(self.extras) if self.extras else []
        if pip:
            env["pip"] = pip
        return env

    def metadata(self) -> dict[str, str]:
        return {
            "apsgen_job": self.job_name,
            "apsgen_output": self.output or self.spec_output or "",
            "apsgen_command": "nightly" if self.nightly else "run",
        }


def _attempt_number(base: str, sid: str) -> int | None:
    if sid == base:
        return 1
    m = re.fullmatch(re.escape(base) + r"-r(\d+)", sid)
    return int(m.group(1)) if m else None


def attempts(c: Any, base: str) -> list[tuple[int, str, str]]:
    """(attempt number, submission id, status) of every attempt of `base`, oldest first."""
    found = []
    for job in c.list_jobs():
        sid = getattr(job, "submission_id", None)
        n = _attempt_number(base, sid) if sid else None
        if n is not None:
            found.append((n, sid, str(getattr(job.status, "value", job.status))))
    return sorted(found)


def latest_attempt(c: Any, sid: str) -> str:
    """`sid` itself, or its latest attempt when it was submitted again."""
    found = attempts(c, sid)
    return found[-1][1] if found else sid


def submit(sub: Submission, address: str | None, *, submission: str | None = None) -> str:
    """Submit a job, or the next attempt of one that ended; returns the submission id."""
    c = client(address)
    base = submission or submission_id(sub.job_name, nightly=sub.nightly)
    found = attempts(c, base)
    for _, sid, status in found:
        if status not in TERMINAL:
            raise ClusterError(
                f"job {sid} is already {status.lower()} on {c.get_address()}; follow it with `apsgen logs {sid}` "
                f"or stop it with `apsgen stop {sid}` before submitting again"
            )
    sid = base if not found else f"{base}-r{found[-1][0] + 1}"
    if found:
        log.info("%s ended (%s); submitting %s, which resumes from the output", found[-1][1], found[-1][2], sid)
    return c.submit_job(
        entrypoint=sub.entrypoint(), submission_id=sid, runtime_env=sub.runtime_env(), metadata=sub.metadata()
    )


def _status_or_none(c: Any, sid: str) -> str | None:
    try:
        status = c.get_job_status(sid)
    except Exception as e:  # the client raises a RuntimeError "does not exist" for unknown ids
        if "does not exist" in str(e) or "not found" in str(e).lower():
            return None
        raise
    return str(getattr(status, "value", status))


def job_info(sid: str, address: str | None) -> dict[str, Any]:
    c = client(address)
    sid = latest_attempt(c, sid)
    try:
        info = c.get_job_info(sid)
    except Exception as e:
        raise ClusterError(f"no job {sid!r} on {c.get_address()}: {e}") from None
    status = str(getattr(info.status, "value", info.status))
    return {
        "submission_id": sid,
        "status": status,
        "message": info.message,
        "entrypoint": info.entrypoint,
        "start_time": _iso(info.start_time),
        "end_time": _iso(info.end_time),
        "metadata": dict(info.metadata or {}),
        "address": c.get_address(),
    }


def _iso(ms: int | None) -> str | None:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="seconds") if ms else None


def logs(sid: str, address: str | None, *, follow: bool = False) -> None:
    """Print a job's driver log; with `follow`, keep printing until the job ends."""
    c = client(address)
    sid = latest_attempt(c, sid)
    if not follow:
        sys.stdout.write(c.get_job_logs(sid))
        return
    import asyncio

    async def tail() -> None:
        async for chunk in c.tail_job_logs(sid):
            sys.stdout.write(chunk)
            sys.stdout.flush()

    asyncio.run(tail())


def stop(sid: str, address: str | None, *, wait_s: float = 60.0) -> tuple[str, str]:
    """Ask a job to stop (its driver gets SIGTERM and commits what it finished); the id of the
    attempt stopped and its status at the end of the wait."""
    import time

    c = client(address)
    sid = latest_attempt(c, sid)
    status = _status_or_none(c, sid)
    if status is None:
        raise ClusterError(f"no job {sid!r} on {c.get_address()}; `apsgen status --job-id` lists none by that id")
    if status in TERMINAL:
        return sid, status
    c.stop_job(sid)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        status = _status_or_none(c, sid) or "STOPPED"
        if status in TERMINAL:
            return sid, status
        time.sleep(1.0)
    return sid, status
