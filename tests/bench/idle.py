"""What every benchmark does before a timed step: wait for an idle machine.

Whatever the step before left running (writeback, PostgreSQL's checkpoint
after a dropped database or its autovacuum, ejabberd taking a deleted tree
apart) would otherwise fall into the next measurement, whichever side it is.
"""

import os
import time


def cpu_busy(span):
    """Share of the machine's CPU time spent busy over `span` seconds."""
    def sample():
        with open("/proc/stat") as f:
            t = [int(x) for x in f.readline().split()[1:9]]
        return sum(t), t[3] + t[4]  # total, idle + iowait
    total0, idle0 = sample()
    time.sleep(span)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def quiet(limit=0.10, span=1.0, timeout=120):
    """Writes out dirty pages, then waits until the machine has been nearly
    idle (under `limit` busy) for `span` seconds, or `timeout` has passed."""
    os.sync()
    deadline = time.monotonic() + timeout
    while cpu_busy(span) > limit:
        if time.monotonic() > deadline:
            print(f"note: the machine was still busy after {timeout} s; measuring anyway",
                  flush=True)
            return
