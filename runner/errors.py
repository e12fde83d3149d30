"""The one exit-code table, and the errors the user must act on, each carrying the code it maps to.

``cli.main`` is the one place an error becomes an exit code; nothing else calls ``sys.exit``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What ``python -m runner`` exits with. An incompatible cell is a finding, not a failure."""

    OK = 0  # the runner worked
    INTERNAL = 1  # a bug: run with --debug for the traceback
    CONFIG = 2  # a bad matrix file, flag, results file to --resume or to merge
    NOTHING_SELECTED = 3  # the matrix and the filters selected no environment
    NO_ENGINE = 4  # no container engine answered (--engine docker)
    NO_BASE_IMAGE = 5  # no base image at all could be had
    ENGINE_LOST = 6  # the engine answered at the start, then stopped answering
    DISK_FULL = 7  # the work directory's file system is full
    REGRESSION = 8  # --fail-on regression: a cell that passed in the previous run does not pass now
    HISTORY = 9  # the history file cannot be used (newer schema, not SQLite)
    NOT_REPRODUCED = 10  # repro: the cell measured again has another status than in the run
    API = 11  # notify: GitHub's API refused a request or did not answer
    SIGINT = 130  # Ctrl-C: what was measured is kept; --resume completes it
    SIGTERM = 143  # stopped by the scheduler: the same


class RunnerError(Exception):
    """Base class: something the user must fix. ``str(error)`` is a short paragraph saying what to do."""

    exit_code = ExitCode.INTERNAL


class ConfigError(RunnerError):
    """The matrix file is invalid: names the file, the YAML path and the line."""

    exit_code = ExitCode.CONFIG


class UsageError(ConfigError):
    """A command-line value the runner cannot use (``--jobs -1``, ``--shard 3/2``, ``--external`` not a folder)."""


class ResumeError(ConfigError):
    """``--resume`` has nothing it can complete: no results file, another matrix, shard or probe set."""


class MergeError(ConfigError):
    """Shard results that do not make one run; the message says which file and what differs."""


class NothingSelectedError(RunnerError):
    """The matrix and the filters selected no environment."""

    exit_code = ExitCode.NOTHING_SELECTED


class EngineUnavailableError(RunnerError):
    """No container engine answered."""

    exit_code = ExitCode.NO_ENGINE


class BaseImageError(RunnerError):
    """A base image could not be found locally, pulled, or bootstrapped."""

    exit_code = ExitCode.NO_BASE_IMAGE


class EngineLostError(RunnerError):
    """The engine answered at the start, then stopped answering mid-run."""

    exit_code = ExitCode.ENGINE_LOST


class WorkDiskFullError(RunnerError):
    """The work directory's file system is full: nothing more can be measured."""

    exit_code = ExitCode.DISK_FULL


class HistoryError(RunnerError):
    """The history file cannot be opened as this runner's history (a newer schema, or not SQLite)."""

    exit_code = ExitCode.HISTORY


class Interrupted(BaseException):
    """SIGTERM (or SIGINT): stop, keep what was measured, remove the run's containers."""

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_code = exit_code
