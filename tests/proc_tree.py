"""The process tree from Linux /proc: which processes a test started, and their memory."""

from __future__ import annotations

from pathlib import Path


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, resident memory in kB) of every process still readable."""
    table = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:  # exited while we read
            continue
        table[int(status.parent.name)] = (int(fields["PPid"]), int(fields.get("VmRSS", "0 kB").split()[0]))
    return table


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children(pid: int) -> set[int]:
    """Pids whose parent is ``pid``."""
    return {child for child, (parent, _) in process_table().items() if parent == pid}


def tree_rss_mb(root: int) -> float:
    """Resident memory (MB) of process ``root`` and all its descendants."""
    table = process_table()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += table.get(pid, (0, 0))[1]
        stack += [child for child, (parent, _) in table.items() if parent == pid]
    return total / 1024
