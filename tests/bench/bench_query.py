"""Query service benchmark: XEP-0329 pages of a directory of a million
catalog entries, each a round trip from a client (slixmpp) through ejabberd
to filerepod and its catalog.  Prints the median and p99 per kind of page
and the ratio of the last page's median to the first's; asserts nothing.

    tools/bench.sh                      (starts the services, runs this)

The entries are written straight into the daemon's catalog (a directory of
BENCH_QUERY_ENTRIES=1000000 files, each with a current revision), as the
indexer would have recorded them; then BENCH_QUERY_ROUNDS=200 requests of
BENCH_QUERY_PAGE=100 entries of each kind: the first page, a page in the
middle (via <after/>), the last page (via an empty <before/>), and <index/>
jumps to random positions.  Targets: p50 < 5 ms, last/first <= 1.2.
"""

import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Daemon, load_services_env, psql  # noqa: E402
from xmppclient import Client, error_condition  # noqa: E402

ENTRIES = int(os.environ.get("BENCH_QUERY_ENTRIES", "1000000"))
ROUNDS = int(os.environ.get("BENCH_QUERY_ROUNDS", "200"))
PAGE = int(os.environ.get("BENCH_QUERY_PAGE", "100"))


def name(i):
    return f"file-{i:07d}.tar.xz"


def uid(i):
    return "f" + name(i).encode().hex()


def fill(env, db):
    """One directory 'big' of ENTRIES files with a revision each."""
    started = time.monotonic()
    psql(env, db, f"""
        BEGIN;
        INSERT INTO entry (repository_id, parent_id, name, path, kind)
          SELECT r.id, e.id, 'big', 'big', 'directory' FROM repository r
          JOIN entry e ON e.repository_id = r.id AND e.parent_id IS NULL;
        INSERT INTO entry (repository_id, parent_id, name, path, kind, size)
          SELECT d.repository_id, d.id, n, 'big/' || n, 'file', 1000 + i
          FROM entry d, generate_series(0, {ENTRIES - 1}) i,
               LATERAL (SELECT 'file-' || lpad(i::text, 7, '0') || '.tar.xz' AS n) x
          WHERE d.path = 'big';
        INSERT INTO revision (entry_id, number, commit_id, size, mtime, mime, sha256, sha1)
          SELECT e.id, 1, repeat('ab', 20), e.size, now(), 'application/x-xz',
                 sha256(e.name::bytea), substr(sha256(e.path::bytea), 1, 20)
          FROM entry e WHERE e.path LIKE 'big/%';
        UPDATE entry e SET current_revision_id = v.id FROM revision v WHERE v.entry_id = e.id;
        COMMIT;
    """)
    psql(env, db, "VACUUM ANALYZE entry")
    psql(env, db, "VACUUM ANALYZE revision")
    return time.monotonic() - started


def measure(client, to, rsm):
    xml = (f"<iq type='get' to='{to}'><query xmlns='urn:xmpp:fis:0' node='bench/big'>"
           f"<set xmlns='http://jabber.org/protocol/rsm'><max>{PAGE}</max>{rsm}</set>"
           f"</query></iq>")
    started = time.perf_counter()
    reply = client.iq(xml, timeout=60)
    took = (time.perf_counter() - started) * 1000
    if reply.get("type") != "result":
        raise SystemExit(f"refused: {error_condition(reply)} for {rsm}")
    return took


def stats(samples):
    samples = sorted(samples)
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main():
    env = load_services_env()
    root = tempfile.mkdtemp(prefix="filerepo-bench-query-")
    extra = {
        "repositories": [{"name": "bench", "path": root}],
        "query": {"page_max": 1000, "rate_per_second": 100000, "rate_burst": 100000},
    }
    with Daemon(env, extra=extra) as daemon:
        daemon.wait_log(r"xmpp: connected as ")
        deadline = time.monotonic() + 60
        while psql(env, daemon.db, "SELECT count(*) FROM entry WHERE parent_id IS NULL") != ["1"]:
            if time.monotonic() > deadline:
                raise SystemExit("the repository never reached the catalog")
            time.sleep(0.2)
        took = fill(env, daemon.db)
        print(f"catalog: {ENTRIES} entries in one directory written in {took:.1f} s")
        rng = random.Random(0)
        with Client(env["XMPP_USER_ALICE"], env["XMPP_PASS_ALICE"], env["XMPP_HOST"],
                    env["XMPP_C2S_PORT"]) as alice:
            to = daemon.component
            kinds = {
                "first page": lambda: "",
                "middle (after)": lambda: f"<after>{uid(ENTRIES // 2)}</after>",
                "last page (before)": lambda: "<before/>",
                "index jump": lambda: f"<index>{rng.randrange(ENTRIES)}</index>",
            }
            for rsm in kinds.values():        # warm up: plans, caches
                for _ in range(5):
                    measure(alice, to, rsm())
            results = {k: [] for k in kinds}
            for _ in range(ROUNDS):           # interleaved, so load hits all alike
                for k, rsm in kinds.items():
                    results[k].append(measure(alice, to, rsm()))
        print(f"round trips of {PAGE}-entry pages, {ROUNDS} each (client -> ejabberd -> "
              f"filerepod -> catalog and back):")
        medians = {}
        for k, samples in results.items():
            p50, p99 = stats(samples)
            medians[k] = p50
            print(f"  {k:20s} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
        print(f"  last/first           {medians['last page (before)'] / medians['first page']:.2f}"
              f"   (target <= 1.2; p50 target < 5 ms)")


if __name__ == "__main__":
    main()
