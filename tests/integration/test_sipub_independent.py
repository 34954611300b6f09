"""An independent client receives a file from the daemon over sipub
(XEP-0137): slixmpp's own plugins for SI (XEP-0095), SI file transfer
(XEP-0096), IBB (XEP-0047) and SOCKS5 (XEP-0065) read the published sipub
mirror, start the transfer, accept the daemon's SI offer and receive the
file byte-identical, once over IBB and once over SOCKS5."""

import asyncio
import hashlib
import os
import sys
import tempfile
import uuid
import xml.etree.ElementTree as ET

from harness import Daemon, check, client, load_services_env, psql, wait_for
from sipub_client import IBB, S5B, SIPUB, indexed, sipub_mirror, sipub_rows


async def slixmpp_fetch(env, pubsub, node, method, size):
    """An independent client: slixmpp's own plugins for SI (XEP-0095), SI
    file transfer (XEP-0096), IBB (XEP-0047) and SOCKS5 (XEP-0065).  Reads
    the item's sipub mirror, sends <start/>, accepts the daemon's offer with
    slixmpp's SI code (which picks `method`: the other one is unregistered),
    and collects what slixmpp's bytestream receives.  Returns (bytes, the
    offer's file element as slixmpp read it)."""
    import slixmpp
    x = slixmpp.ClientXMPP(env["XMPP_USER_BOB"] + "/independent", env["XMPP_PASS_BOB"])
    x.whitespace_keepalive = False
    for plugin in ("xep_0030", "xep_0020", "xep_0047", "xep_0065", "xep_0095", "xep_0096",
                   "xep_0060"):
        x.register_plugin(plugin)
    # slixmpp 1.8.3 registers its (async) SI request handler as a plain
    # Callback, so the coroutine is never awaited and no si_request event
    # ever fires; the same handler of the plugin, registered as a
    # CoroutineCallback, runs as meant.
    from slixmpp.xmlstream.handler import CoroutineCallback
    from slixmpp.xmlstream.matcher import StanzaPath
    x.remove_handler("SI Request")
    x.register_handler(CoroutineCallback("SI Request", StanzaPath("iq@type=set/si"),
                                         x["xep_0095"]._handle_request))
    x["xep_0095"].unregister_method(IBB if method == S5B else S5B)
    loop = asyncio.get_running_loop()
    session = loop.create_future()
    offered, ended = loop.create_future(), loop.create_future()
    received = bytearray()
    x.add_event_handler("session_start", lambda _: session.done() or session.set_result(1))
    x.add_event_handler("si_request",
                        lambda iq: offered.done() or offered.set_result(iq))

    def on_data(stream):
        while not stream.recv_queue.empty():
            received.extend(stream.recv_queue.get_nowait())

    def on_end(stream):
        on_data(stream)
        if not ended.done():
            ended.set_result(stream)
    def on_socks5_data(data):
        received.extend(data)

    def on_socks5_closed(_):
        if len(received) >= size and not ended.done():
            ended.set_result(None)
    x.add_event_handler("ibb_stream_data", on_data)
    x.add_event_handler("ibb_stream_end", on_end)
    x.add_event_handler("socks5_data", on_socks5_data)
    x.add_event_handler("socks5_closed", on_socks5_closed)
    x.connect((env["XMPP_HOST"], int(env["XMPP_C2S_PORT"])), force_starttls=False,
              disable_starttls=True)
    try:
        await asyncio.wait_for(session, 30)
        x.send_presence()
        items = await x["xep_0060"].get_items(pubsub, node, timeout=30)
        mirror = next(items.xml.iter(f"{{{SIPUB}}}sipub"))
        iq = x.Iq()
        iq["type"], iq["to"], iq["id"] = "get", mirror.get("from"), x.new_id()
        iq.append(ET.fromstring(f"<start xmlns='{SIPUB}' id='{mirror.get('id')}'/>"))
        reply = await iq.send(timeout=30)
        sid = reply.xml.find(f"{{{SIPUB}}}starting").get("sid")
        offer = await asyncio.wait_for(offered, 30)
        check(offer["si"]["id"] == sid, "slixmpp's offer carries the starting sid")
        file = dict(name=offer["si"]["file"]["name"], size=offer["si"]["file"]["size"],
                    hash=offer["si"]["file"]["hash"])
        await x["xep_0095"].accept(offer["from"], sid)
        await asyncio.wait_for(ended, 300)
        return bytes(received), file
    finally:
        x.disconnect()


def independent(env):
    """slixmpp as the requester, with its own SI and IBB code.  (slixmpp
    takes back its pre-authorization of the sid at the first <open/>, even
    one it refuses for its block-size: the daemon's block-size stays within
    slixmpp's 8192 here.)"""
    repo = "si" + uuid.uuid4().hex[:8]
    payload = os.urandom(3 * 1024 * 1024 + 4321)
    with tempfile.TemporaryDirectory(prefix="filerepo-si-") as root:
        with open(os.path.join(root, "rel.tar.xz"), "wb") as f:
            f.write(payload)
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "copy",
                             "digests": ["sha-256", "md5"]},
                 "transfer": {"ibb_block_size": 8192, "ibb_window": 4}}
        with Daemon(env, extra=extra) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            daemon.wait_log(r"catalog: connected")
            indexed(sql, 1)
            watcher = client(env, "alice")
            sipub_mirror(watcher, env["XMPP_PUBSUB_JID"], f"{repo}/rel.tar.xz")
            watcher.close()
            for method in (IBB, S5B):
                data, file = asyncio.run(slixmpp_fetch(env, env["XMPP_PUBSUB_JID"],
                                                       f"{repo}/rel.tar.xz", method,
                                                       len(payload)))
                check(file["name"] == "rel.tar.xz" and int(file["size"]) == len(payload)
                      and file["hash"] == hashlib.md5(payload).hexdigest(),
                      f"slixmpp read the offer: {file}")
                check(len(data) == len(payload) and
                      hashlib.sha256(data).digest() == hashlib.sha256(payload).digest(),
                      f"slixmpp received the file identical over {method}"
                      f" ({len(data)} of {len(payload)} bytes)")
                wait_for("the row", lambda: sipub_rows(sql) and
                         sipub_rows(sql)[-1][1] == "success")
            check(sipub_rows(sql) == [["ibb", "success", str(len(payload)), "0", "", "bob"],
                                      ["s5b-direct", "success", str(len(payload)), "0", "",
                                       "bob"]],
                  f"rows: {sipub_rows(sql)}")
            check(daemon.stop() == 0, "filerepod stops cleanly")
    print("ok: an independent client (slixmpp's SI, IBB and SOCKS5) receives the file")


def main():
    independent(load_services_env())
    print("test_sipub_independent: all passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
