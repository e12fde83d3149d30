"""Channels: how an environment's packages reach its image (pip wheels, Debian packages, npm packages).

Each channel is one module behind the :class:`~runner.channels.base.Channel` protocol, registered in
:data:`CHANNELS`, as cibuildwheel's platforms are: validation of a package entry, the library it provides and
its exact version, the slug's head, the Dockerfile steps that install it, which index decides versions, whether the
local engine can make it. Adding a channel is one module, its name in ``base.ChannelName`` and a line here
(and the name in the matrix schema's enum, which a unit test keeps equal to :data:`CHANNEL_NAMES`).
"""

from __future__ import annotations

from runner.channels import apt, browser, npm, pip
from runner.channels.base import CHANNEL_NAMES, Channel, ChannelName, Registry
from runner.channels.steps import ImageInput

__all__ = ["CHANNELS", "CHANNEL_NAMES", "Channel", "ChannelName", "ImageInput", "Registry", "channel"]

CHANNELS: dict[ChannelName, Channel] = {"pip": pip, "apt": apt, "npm": npm, "browser": browser}


def channel(name: ChannelName) -> Channel:
    return CHANNELS[name]
