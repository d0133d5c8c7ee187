"""Processes by session, for tests and benches that start a command with
`start_new_session=True` and must stop all it started (Ray's GCS, raylet and actors
have their own process groups but stay in the session) without `ray stop`, which would
stop every Ray on the machine."""

from __future__ import annotations

import os


def session_members(sid: int) -> list[int]:
    """Live processes of session `sid`."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    members.append(int(entry))
            except OSError:
                pass
    return members
