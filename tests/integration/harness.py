"""Runs the real filerepod for integration tests.

The private services of the run (tools/services.sh, started by the ctest
fixture) are described by $FILEREPO_SERVICES_DIR/services.env.  Each test gets
a fresh catalog database and a state directory of its own, writes a
configuration for them, and starts the daemon binary named by $FILEREPOD:

    env = load_services_env()
    with Daemon(env) as daemon:
        daemon.wait_log(r"xmpp: connected")
        ...
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
import zlib

from xmppclient import Client, load_services_env

__all__ = ["Daemon", "fresh_database", "drop_database", "psql", "write_config",
           "load_services_env", "binary", "services", "services_script", "check",
           "DISCO_INFO", "schema_version", "client", "wait_for"]

# A disco#info request; format with to=JID.
DISCO_INFO = ("<iq type='get' to='{to}'>"
              "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")


def check(cond, what):
    """Fails the test with `what` unless cond holds."""
    if not cond:
        raise AssertionError(what)


def binary(name):
    """Path of a built program ($FILEREPOD, $FILEREPO)."""
    path = os.environ.get(name.upper())
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"${name.upper()} does not name the built {name}")
    return path


def services_script():
    return os.path.join(os.environ["FILEREPO_SOURCE_DIR"], "tools", "services.sh")


def schema_version():
    """The newest catalog schema version in the sources (schema/NNN_*.sql)."""
    import glob
    files = glob.glob(os.path.join(os.environ["FILEREPO_SOURCE_DIR"], "schema", "[0-9]*_*.sql"))
    return max(int(os.path.basename(f)[:3]) for f in files)


def services(verb, services_dir=None):
    """Runs tools/services.sh VERB DIR (DIR: this run's services); returns
    the completed process.  Its output goes to the test's output."""
    import sys
    services_dir = services_dir or os.environ["FILEREPO_SERVICES_DIR"]
    return subprocess.run([services_script(), verb, services_dir],
                          stdout=sys.stdout, stderr=sys.stderr)


def psql(env, db, sql):
    """Runs sql in database db of the private cluster; returns stdout lines."""
    out = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "-h", env["PGHOST"], "-U", env["PGUSER"], "-d", db, "-c", sql],
        capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"psql {sql!r} failed ({out.returncode}): {out.stderr.strip()}")
    return [line for line in out.stdout.splitlines() if line]


def fresh_database(env):
    name = "t_" + uuid.uuid4().hex[:12]
    psql(env, "postgres", f"CREATE DATABASE {name} TEMPLATE template0")
    return name


def drop_database(env, name):
    psql(env, "postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def write_config(path, env, db, state_dir, extra=None, **xmpp):
    """Writes a filerepod configuration for the private services; `extra`
    adds top-level keys (repositories, indexer, ...)."""
    settings = {
        "host": env["XMPP_HOST"],
        "port": int(env["XMPP_COMPONENT_PORT"]),
        # A domain of its own per daemon, so tests running side by side
        # never share a component (the server accepts any subdomain with
        # the shared secret).
        "component": f"files-{uuid.uuid4().hex[:8]}.{env['XMPP_DOMAIN']}",
        "secret_file": env["XMPP_COMPONENT_SECRET_FILE"],
    }
    settings.update(xmpp)
    import json
    document = {
        "database": {"conninfo": f"host={env['PGHOST']} user={env['PGUSER']} dbname={db}"},
        "xmpp": settings,
        "state_dir": state_dir,
        "log": {"level": "info"},
    }
    document.update(extra or {})
    text = json.dumps(document, indent=2)
    with open(path, "w") as f:
        f.write("// written by tests/integration/harness.py\n" + text + "\n")


class Daemon:
    """A filerepod process with its own catalog database and state dir."""

    def __init__(self, env, extra_args=(), extra=None, wrapper=(), autostart=True, **xmpp):
        """extra_args: more filerepod arguments; extra: top-level config
        keys; wrapper: a command filerepod runs under (e.g. setpriv);
        autostart: whether `with` starts it (else the test calls start())."""
        self.autostart = autostart
        self.env = env
        self.dir = tempfile.mkdtemp(prefix="filerepod-test-")
        self.db = fresh_database(env)
        self.config = os.path.join(self.dir, "filerepod.json")
        self.log_path = os.path.join(self.dir, "filerepod.log")
        self.state = os.path.join(self.dir, "state")
        write_config(self.config, env, self.db, self.state, extra=extra, **xmpp)
        self.extra_args = list(extra_args)
        self.wrapper = list(wrapper)
        self.proc = None
        self._log = None
        import json
        with open(self.config) as f:
            text = f.read()
        self.component = json.loads(text[text.index("{"):])["xmpp"]["component"]

    def start(self):
        """Starts the daemon; a restart appends to the same log."""
        if self._log:
            self._log.close()
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.wrapper + [binary("filerepod"), "-c", self.config]
                                     + self.extra_args,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, pattern, timeout=30, after=0):
        """Waits until a log line matches; returns (match, offset after it)."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            text = self.log()
            m = rx.search(text, after)
            if m:
                return m, m.end()
            if self.proc.poll() is not None:
                raise AssertionError(f"filerepod exited ({self.proc.returncode}) before "
                                     f"/{pattern}/; log:\n{text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no /{pattern}/ in {timeout} s; log:\n{text}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals the daemon and returns its exit status."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"filerepod did not stop within {timeout} s on {sig!r}")
        return self.proc.returncode if self.proc else None

    def close(self):
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        finally:
            if self._log:
                self._log.close()
            drop_database(self.env, self.db)
            if os.environ.get("FILEREPO_KEEP_TEST_DIRS"):
                print(f"kept {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start() if self.autostart else self

    def __exit__(self, *exc):
        if exc[0] is not None:
            print(f"--- filerepod log ---\n{self.log()[-20000:]}--- end of log ---")
        self.close()


def client(env, who):
    """A connected Client for the test account `who` (alice, bob, carol)."""
    up = who.upper()
    return Client(env["XMPP_USER_" + up], env["XMPP_PASS_" + up], env["XMPP_HOST"],
                  env["XMPP_C2S_PORT"]).connect()


def store_object(state_dir, sha256_hex):
    """The bytes the daemon's content store keeps under that sha-256, or
    None: a file of its own (objects/ab/cdef...) or a packed object, found
    by reading the packs' indexes as documented in indexer/store_pack.h
    (64-byte records: digest, offset and length little-endian, crc32 of
    the bytes, crc32 of the record).  The last intact record wins."""
    store = os.path.join(state_dir, "store")
    loose = os.path.join(store, "objects", sha256_hex[:2], sha256_hex[2:])
    if os.path.exists(loose):
        with open(loose, "rb") as f:
            return f.read()
    want, found = bytes.fromhex(sha256_hex), None
    packs = os.path.join(store, "packs")
    for name in sorted(n for n in os.listdir(packs) if n.endswith(".idx")):
        with open(os.path.join(packs, name), "rb") as f:
            index = f.read()
        for at in range(0, len(index) - 63, 64):
            r = index[at:at + 64]
            if r[:32] == want and zlib.crc32(r[:60]) == int.from_bytes(r[60:], "little"):
                found = (name[:-4] + ".data", int.from_bytes(r[32:40], "little"),
                         int.from_bytes(r[40:44], "little"), int.from_bytes(r[44:48], "little"))
    if not found:
        return None
    with open(os.path.join(packs, found[0]), "rb") as f:
        f.seek(found[1])
        data = f.read(found[2])
    return data if zlib.crc32(data) == found[3] else None


def wait_for(what, fn, timeout=60, step=0.05):
    """Calls fn until it returns something true, and returns that; fails
    naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)
