"""Typed access to a flow store's Zarr members, and the error a store that is not as expected raises."""

from __future__ import annotations

from typing import Any

import zarr


class FlowStoreError(Exception):
    """A flow store is missing, ambiguous or inconsistent; the message names the URL and the reason."""


def member_group(group: zarr.Group, *path: str) -> zarr.Group:
    """The subgroup at `path` under `group` (KeyError if absent; FlowStoreError if it is an array)."""
    for name in path:
        member = group[name]
        if not isinstance(member, zarr.Group):
            raise FlowStoreError(f"{name!r} in {group.path or group.store} is an array, not a group")
        group = member
    return group


def member_array(group: zarr.Group, name: str) -> zarr.Array[Any]:
    """The array `name` in `group` (KeyError if absent; FlowStoreError if it is a group)."""
    member = group[name]
    if not isinstance(member, zarr.Array):
        raise FlowStoreError(f"{name!r} in {group.path or group.store} is a group, not an array")
    return member
