"""A catalog server that accepts the TCP connection and then says nothing:
filerepod gives up on the attempt after its deadline, says so, tries again
later, and answers on XMPP all the while (connecting never blocks it)."""

import socket
import sys
import time

from harness import DISCO_INFO, Daemon, check, load_services_env
from xmppclient import Client




def main():
    env = load_services_env()
    # The kernel completes the handshake into the backlog; nobody reads.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    daemon = Daemon(env)
    with open(daemon.config) as f:
        text = f.read()
    with open(daemon.config, "w") as f:
        f.write(text.replace(f"host={env['PGHOST']}", f"host=127.0.0.1 port={port}"))
    with daemon:
        daemon.wait_log(r"xmpp: connected as ")
        with Client(env["XMPP_USER_ALICE"], env["XMPP_PASS_ALICE"], env["XMPP_HOST"],
                    env["XMPP_C2S_PORT"]) as alice:
            # While the catalog attempt hangs, disco#info is answered at once.
            for _ in range(5):
                started = time.monotonic()
                reply = alice.iq(DISCO_INFO.format(to=daemon.component), timeout=2)
                check(reply.get("type") == "result", "disco#info while the catalog hangs")
                print(f"disco#info answered in {1000 * (time.monotonic() - started):.1f} ms "
                      f"while the catalog attempt hangs")
                time.sleep(0.5)
            check("catalog: connected" not in daemon.log(), "connected to a silent server?")
            m, _ = daemon.wait_log(r"catalog: unavailable: no answer to the connection "
                                   r"attempt; retrying in (\d+) ms", timeout=20)
            reply = alice.iq(DISCO_INFO.format(to=daemon.component), timeout=2)
            check(reply.get("type") == "result", "disco#info after the attempt gave up")
        check(daemon.stop() == 0, "clean stop while connecting to the catalog")
    silent.close()
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
