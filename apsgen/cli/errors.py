"""Errors a user can fix: printed as one clear line, without a traceback."""

from __future__ import annotations


class UserError(Exception):
    pass


def user_errors() -> tuple[type[BaseException], ...]:
    from apsgen.cluster.jobs import ClusterError
    from apsgen.config import SpecError
    from apsgen.data import DatasetError
    from apsgen.io.store import FingerprintMismatch
    from apsgen.models import ModelError
    from apsgen.runner.calibrate import CalibrationMismatch
    from apsgen.runner.pool import WorkerStartError

    return (SpecError, DatasetError, ClusterError, FingerprintMismatch, ModelError, WorkerStartError,
            CalibrationMismatch, FileNotFoundError)
