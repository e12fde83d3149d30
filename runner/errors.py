"""Errors the user must act on. Each class carries the process exit code it maps to."""

from __future__ import annotations


class RunnerError(Exception):
    """Base class: something the user must fix. ``str(error)`` is a short paragraph saying what to do."""

    exit_code = 1


class ConfigError(RunnerError):
    """The matrix file is invalid: names the file, the YAML path and the line."""

    exit_code = 2


class NothingSelectedError(RunnerError):
    """The matrix and the filters selected no environment."""

    exit_code = 3


class EngineUnavailableError(RunnerError):
    """No container engine answered."""

    exit_code = 4


class BaseImageError(RunnerError):
    """A base image could not be found locally, pulled, or bootstrapped."""

    exit_code = 5


class EngineLostError(RunnerError):
    """The engine answered at the start, then stopped answering mid-run."""

    exit_code = 6


class WorkDiskFullError(RunnerError):
    """The work directory's file system is full: nothing more can be measured."""

    exit_code = 7


class Interrupted(BaseException):
    """SIGTERM (or SIGINT): stop, keep what was measured, remove the run's containers."""

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_code = exit_code
