"""`filerepo get` end to end: a real daemon indexes real files; the CLI logs
in as a test account and fetches them over Jingle. What is checked is what a
user sees: the bytes of the file written (byte-identical, sha-256), the exit
status, the --json report (method, bytes received), the messages.

- a 20 MB file over SOCKS5 direct (our candidate or the daemon's), through
  the server's proxy65 (the daemon's direct candidate unreachable), over IBB
  (--ibb), and over IBB after no SOCKS5 candidate worked (the fallback);
- an interrupted download (the file cut short; a get stopped by SIGINT
  mid-stream) resumed: only the rest is received, the whole file verified;
- a partial file whose beginning is not the file's: checksum mismatch,
  exit 1, the file left as it is;
- an unknown file: exit 66 and a message, no file left behind; a request
  over the daemon's per-requester limit: exit 75 and a message;
- an old revision by --rev N (read from the pubsub item) and by --hash;
- a progress bar on a terminal, none otherwise.
"""

import hashlib
import json
import os
import pty
import signal
import subprocess
import sys
import tempfile
import threading
import uuid

from harness import Daemon, binary, check, client, load_services_env, psql, wait_for

S5B = "urn:xmpp:jingle:transports:s5b:1"
SIZE = 20 * 1024 * 1024


def run_get(env, args, cwd, who="alice", stderr=subprocess.PIPE, timeout=240):
    """Runs `filerepo get ARGS` as test account `who` in cwd."""
    up = who.upper()
    e = dict(os.environ,
             FILEREPO_XMPP_JID=env["XMPP_USER_" + up],
             FILEREPO_XMPP_PASSWORD=env["XMPP_PASS_" + up],
             FILEREPO_XMPP_SERVER=f"{env['XMPP_HOST']}:{env['XMPP_C2S_PORT']}")
    e.pop("FILEREPO_XMPP_PASSWORD_FILE", None)
    return subprocess.run([binary("filerepo"), "get"] + args, cwd=cwd, env=e,
                          stdout=subprocess.PIPE, stderr=stderr, timeout=timeout, text=True)


def report(r):
    check(r.returncode == 0, f"filerepo get exit {r.returncode}: {r.stderr}")
    lines = r.stdout.strip().splitlines()
    check(len(lines) == 1, f"one JSON object: {r.stdout!r}")
    return json.loads(lines[0])


def same_file(path, data):
    with open(path, "rb") as f:
        got = f.read()
    return len(got) == len(data) and got == data


def main():
    env = load_services_env()
    repo = "gt" + uuid.uuid4().hex[:8]
    big = os.urandom(SIZE)
    first, second = os.urandom(300000), os.urandom(200000)
    with tempfile.TemporaryDirectory(prefix="filerepo-gt-") as root, \
            tempfile.TemporaryDirectory(prefix="filerepo-gt-out-") as out:
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(big)
        with open(os.path.join(root, "changing.bin"), "wb") as f:
            f.write(first)
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "copy"},
                 "transfer": {"ibb_window": 8, "ibb_block_size": 32768}}
        with Daemon(env, extra=extra) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            to = daemon.component
            daemon.wait_log(r"catalog: connected")
            wait_for("the files indexed", lambda: sql(
                "SELECT count(*) FROM entry WHERE kind = 'file'"
                " AND current_revision_id IS NOT NULL") == ["2"], timeout=120)
            alice = client(env, "alice")
            info = alice.iq(f"<iq type='get' to='{to}'>"
                            "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
            feats = {f.get("var") for f in
                     info.iter("{http://jabber.org/protocol/disco#info}feature")}
            alice.close()
            check(S5B in feats, f"the daemon serves {S5B}")
            target = os.path.join(out, "big.bin")

            # IBB only.
            r = run_get(env, ["--json", "--ibb", to, f"{repo}/big.bin"], out)
            rep = report(r)
            check(same_file(target, big), "big.bin arrives byte-identical over IBB")
            check(rep["method"] == "ibb" and rep["bytes_received"] == SIZE and
                  rep["size"] == SIZE and rep["offset"] == 0 and rep["verified"] and
                  rep["sha256"] == hashlib.sha256(big).hexdigest(), f"the report: {rep}")
            check("\r" not in r.stderr, "no progress bar when stderr is not a terminal")
            print(f"ok: {SIZE} bytes over IBB in {rep['seconds']:.2f} s")

            # The default: SOCKS5, direct to the daemon's listener or ours.
            os.unlink(target)
            rep = report(run_get(env, ["--json", to, f"{repo}/big.bin"], out))
            check(same_file(target, big), f"big.bin arrives byte-identical ({rep['method']})")
            check(rep["method"] == "socks5-direct" and rep["bytes_received"] == SIZE and
                  rep["verified"], f"SOCKS5 direct: {rep}")
            print(f"ok: {SIZE} bytes over SOCKS5 direct in {rep['seconds']:.2f} s")
            # No candidate of ours: the daemon's listener carries them.
            os.unlink(target)
            rep = report(run_get(env, ["--json", "--no-direct", to, f"{repo}/big.bin"], out))
            check(same_file(target, big) and rep["method"] == "socks5-direct",
                  f"SOCKS5 direct to the daemon's candidate: {rep}")
            print("ok: SOCKS5 direct to the daemon's candidate")

            # Resume: the file cut short; only the rest comes.
            cut = 7 * 1024 * 1024 + 333
            with open(target, "r+b") as f:
                f.truncate(cut)
            rep = report(run_get(env, ["--json", to, f"{repo}/big.bin"], out))
            check(same_file(target, big), "the resumed file is identical")
            check(rep["offset"] == cut and rep["bytes_received"] == SIZE - cut and
                  rep["verified"], f"only the rest was received: {rep}")
            # Nothing missing: nothing received, still verified.
            rep = report(run_get(env, ["--json", "--ibb", to, f"{repo}/big.bin"], out))
            check(rep["bytes_received"] == 0 and rep["verified"], f"complete already: {rep}")
            print("ok: resume")

            # A partial file that is not the file's beginning: mismatch, exit 1.
            bad = bytearray(big[:5 * 1024 * 1024])
            bad[1000] ^= 0xff
            with open(target, "wb") as f:
                f.write(bad)
            r = run_get(env, [to, f"{repo}/big.bin"], out)
            check(r.returncode == 1, f"a mismatch exits 1: {r.returncode} {r.stderr}")
            check("checksum mismatch" in r.stderr, f"and says so: {r.stderr}")
            with open(target, "rb") as f:
                got = f.read()
            check(len(got) == SIZE and got[:1000] == big[:1000] and got[1000] != big[1000]
                  and got[5 * 1024 * 1024:] == big[5 * 1024 * 1024:],
                  "the file is left as it is (the rest appended)")
            print("ok: checksum mismatch")

            # Unknown: exit 66, a message, no file.
            r = run_get(env, [to, f"{repo}/nope.bin"], out)
            check(r.returncode == 66 and "no such file" in r.stderr,
                  f"unknown file: {r.returncode} {r.stderr}")
            check(not os.path.exists(os.path.join(out, "nope.bin")), "no empty file left")
            r = run_get(env, ["--rev", "9", to, f"{repo}/changing.bin", "-o", "x"], out)
            check(r.returncode == 66 and "no revision 9" in r.stderr,
                  f"unknown revision: {r.returncode} {r.stderr}")
            r = run_get(env, [to], out)
            check(r.returncode == 64, f"no path: usage ({r.returncode})")
            print("ok: unknown file and revision")

            # An old revision, after the file changed: --rev 1, and --hash.
            with open(os.path.join(root, "changing.bin.tmp"), "wb") as f:
                f.write(second)
            os.rename(os.path.join(root, "changing.bin.tmp"), os.path.join(root, "changing.bin"))
            wait_for("revision 2 indexed", lambda: sql(
                "SELECT count(*) FROM revision v JOIN entry e ON e.id = v.entry_id"
                " WHERE e.path = 'changing.bin'") == ["2"])
            wait_for("revision 1 published", lambda: run_get(
                env, ["--rev", "1", to, f"{repo}/changing.bin", "-o", "old.bin"],
                out).returncode == 0)
            check(same_file(os.path.join(out, "old.bin"), first), "--rev 1: the old bytes")
            r = run_get(env, [to, f"{repo}/changing.bin"], out)
            check(r.returncode == 0 and same_file(os.path.join(out, "changing.bin"), second),
                  f"the path alone: the current bytes {r.stderr}")
            r = run_get(env, ["--hash", hashlib.sha256(first).hexdigest(), to, "-o",
                              "byhash.bin"], out)
            check(r.returncode == 0 and same_file(os.path.join(out, "byhash.bin"), first),
                  f"--hash alone {r.stderr}")
            print("ok: --rev and --hash")

            # On a terminal: a progress bar with the rate and the ETA.
            os.unlink(target)
            master, slave = pty.openpty()
            shown = []

            def drain():
                try:
                    while True:
                        chunk = os.read(master, 65536)
                        if not chunk:
                            break
                        shown.append(chunk)
                except OSError:
                    pass
            reader = threading.Thread(target=drain)
            reader.start()
            r = run_get(env, ["--ibb", to, f"{repo}/big.bin"], out, stderr=slave)
            os.close(slave)
            reader.join(10)
            os.close(master)
            shown = b"".join(shown)
            check(r.returncode == 0 and same_file(target, big), "a download on a terminal")
            text = shown.decode(errors="replace")
            check("\r" in text and "/s" in text and "ETA" in text and "100%" in text,
                  f"a progress bar: {text[-300:]!r}")
            print("ok: progress bar")

            rows = sql("SELECT method, outcome, count(*) FROM transfer"
                       " GROUP BY 1, 2 ORDER BY 1, 2")
            print(f"transfers recorded: {rows}")
            check(daemon.stop() == 0, "filerepod stops cleanly")

        # The daemon's direct candidate unreachable (offered at an address
        # nothing listens on), none of ours: through the server's proxy65;
        # and with no proxy either: the fallback to IBB.
        for proxy, method in (("auto", "socks5-proxy"), ("off", "ibb")):
            extra["transfer"] = {"socks5_host": "127.0.0.2", "socks5_proxy": proxy}
            with Daemon(env, extra=extra) as daemon:
                to = daemon.component
                daemon.wait_log(r"catalog: connected")
                wait_for("the files indexed", lambda: psql(env, daemon.db,
                         "SELECT count(*) FROM entry WHERE kind = 'file'"
                         " AND current_revision_id IS NOT NULL") == ["2"], timeout=120)
                if proxy == "auto":
                    daemon.wait_log(r"SOCKS5 proxy \S+ at", timeout=30)
                os.unlink(target)
                rep = report(run_get(env, ["--json", "--no-direct", to, f"{repo}/big.bin"], out))
                check(same_file(target, big) and rep["method"] == method and
                      rep["bytes_received"] == SIZE and rep["verified"],
                      f"socks5_proxy {proxy}: {method} expected: {rep}")
                rows = psql(env, daemon.db, "SELECT method, outcome FROM transfer")
                check(rows == [("s5b-proxy" if proxy == "auto" else "ibb") + "|success"],
                      f"the daemon's record: {rows}")
                print(f"ok: {SIZE} bytes {'through proxy65' if proxy == 'auto' else 'in-band after SOCKS5 failed'}"
                      f" in {rep['seconds']:.2f} s")
                check(daemon.stop() == 0, "filerepod stops cleanly")
        # A real interruption: SIGINT mid-stream (the daemon's bandwidth cap
        # keeps the stream going long enough), then the same command resumes.
        extra["transfer"] = {"bandwidth_kib_per_second": 4096, "per_requester_max": 1}
        with Daemon(env, extra=extra) as daemon:
            to = daemon.component
            daemon.wait_log(r"catalog: connected")
            wait_for("the files indexed", lambda: psql(env, daemon.db,
                     "SELECT count(*) FROM entry WHERE kind = 'file'"
                     " AND current_revision_id IS NOT NULL") == ["2"], timeout=120)
            os.unlink(target)
            up = "ALICE"
            e = dict(os.environ, FILEREPO_XMPP_JID=env["XMPP_USER_" + up],
                     FILEREPO_XMPP_PASSWORD=env["XMPP_PASS_" + up],
                     FILEREPO_XMPP_SERVER=f"{env['XMPP_HOST']}:{env['XMPP_C2S_PORT']}")
            proc = subprocess.Popen([binary("filerepo"), "get", to, f"{repo}/big.bin"], cwd=out,
                                    env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            wait_for("the first MBs written", lambda: os.path.exists(target) and
                     os.path.getsize(target) >= 2 * 1024 * 1024, timeout=60, step=0.02)
            # Over the daemon's limit (one transfer per requester): refused.
            r = run_get(env, [to, f"{repo}/big.bin", "-o", "second.bin"], out)
            check(r.returncode == 75 and "resource-constraint" in r.stderr,
                  f"a refusal: exit {r.returncode}: {r.stderr}")
            check(not os.path.exists(os.path.join(out, "second.bin")), "no file left")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
            kept = os.path.getsize(target)
            check(proc.returncode == 130 and "interrupted" in err and "resume" in err,
                  f"SIGINT: exit {proc.returncode}: {err}")
            check(0 < kept < SIZE, f"a partial file is kept ({kept} bytes)")
            wait_for("the daemon's record of the cancel", lambda: psql(
                env, daemon.db, "SELECT outcome FROM transfer ORDER BY id") ==
                ["cancel", "refused"])
            rep = report(run_get(env, ["--json", to, f"{repo}/big.bin"], out))
            check(same_file(target, big) and rep["offset"] == kept and
                  rep["bytes_received"] == SIZE - kept, f"resumed after SIGINT: {rep}")
            print(f"ok: interrupted at {kept} bytes, resumed")
            check(daemon.stop() == 0, "filerepod stops cleanly")
    print("test_get: all passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
