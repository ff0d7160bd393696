"""The disk-loss fault of the db-restore drill: PostgreSQL's cluster is deleted and its
process killed, as when the volume under it dies. The WAL archive and the base backups
are kept (they live elsewhere in real life: another volume, object storage), so
`chaoslab db restore` can rebuild it; what the archive had not received yet is lost.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
import xmlrpc.client

from chaos import infra, supervision
from chaos.layout import StackLayout


class DestroyError(RuntimeError):
    """The cluster could not be destroyed; the message says why."""


def destroy(layout: StackLayout, timeout_s: float = 30) -> None:
    """Delete the cluster under the running PostgreSQL, then kill it (-9, no shutdown
    checkpoint, no last WAL archived). Supervision restarts it, and it fails for want of
    a cluster until the restore."""
    data = infra.postgres_files(layout, "pgdata")
    if not data.is_dir():
        raise DestroyError(f"there is no cluster at {data}: it is already gone (`chaoslab db restore`)")
    sup = supervision.Supervisor(layout)
    try:
        pid = int(sup.process("postgres")["pid"])
    except (xmlrpc.client.Fault, OSError) as exc:
        raise DestroyError(f"supervisord does not know PostgreSQL: {exc}") from exc
    # PostgreSQL works inside its data folder by relative paths: the renamed folder is
    # still its own until it dies, and the name the restart looks for is gone at once.
    doomed = infra.postgres_files(layout, "pgdata.destroyed")
    shutil.rmtree(doomed, ignore_errors=True)
    data.rename(doomed)
    if pid:
        with contextlib.suppress(ProcessLookupError):  # it died on its own meanwhile
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    # Its backends notice the postmaster's death and exit; until then they may still write.
    while doomed.exists():
        shutil.rmtree(doomed, ignore_errors=True)
        if time.monotonic() > deadline:
            raise DestroyError(f"{doomed} could not be deleted within {timeout_s:.0f}s")
        time.sleep(0.2)
