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
