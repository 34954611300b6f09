"""tools/services.sh: a second private instance side by side with the run's
own, both serving at once on their own ports; stopping it leaves no process
of it behind and leaves the first one running."""

import os
import shutil
import subprocess
import sys
import tempfile

from harness import DISCO_INFO, check, load_services_env, services
from xmppclient import Client




def processes_of(d):
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if d in line]


def pubsub_answers(env):
    with Client(env["XMPP_USER_BOB"], env["XMPP_PASS_BOB"], env["XMPP_HOST"],
                env["XMPP_C2S_PORT"]) as bob:
        reply = bob.iq(DISCO_INFO.format(to=env["XMPP_PUBSUB_JID"]))
        return reply.get("type") == "result"


def main():
    first = load_services_env()
    second_dir = tempfile.mkdtemp(prefix="filerepo-services-test-", dir="/tmp")
    os.chmod(second_dir, 0o755)
    try:
        check(services("start", second_dir).returncode == 0, "second instance start")
        second = load_services_env(second_dir)
        for key in ("XMPP_C2S_PORT", "XMPP_COMPONENT_PORT", "XMPP_PROXY65_PORT", "PGHOST"):
            check(first[key] != second[key], f"{key} shared by both instances")
        check(pubsub_answers(first) and pubsub_answers(second), "both instances serve at once")
        check(services("status", second_dir).returncode == 0, "status of a running instance")
        check(services("start", second_dir).returncode == 0, "start is idempotent")
        check(processes_of(second_dir), "the second instance has processes")

        check(services("stop", second_dir).returncode == 0, "second instance stop")
        left = processes_of(second_dir)
        check(not left, f"processes left after stop: {left}")
        check(services("status", second_dir).returncode != 0, "status of a stopped instance")
        check(services("stop", second_dir).returncode == 0, "stop is idempotent")

        check(services("status", first["FILEREPO_SERVICES_DIR"]).returncode == 0,
              "the run's own instance is still up")
        check(pubsub_answers(first), "the run's own instance still serves")
    finally:
        services("stop", second_dir)
        shutil.rmtree(second_dir, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
