"""The demo's subscriber: logs in as alice and asks filerepod for its
disco#info, printing the stanza sent and the one received.
Usage: /usr/bin/python3 tools/demo_query.py SERVICES_DIR"""

import logging
import os
import sys
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
logging.getLogger("slixmpp").setLevel(logging.ERROR)  # its import-time notices
from xmppclient import Client, load_services_env  # noqa: E402


def pretty(el, parent_ns="jabber:client", depth=0):
    """The element as it looks on the wire: an xmlns where it changes."""
    ns, _, name = el.tag[1:].partition("}") if el.tag.startswith("{") else ("", "", el.tag)
    attrs = "".join(f" {k}={quoteattr(v)}" for k, v in el.attrib.items())
    if ns and ns != parent_ns:
        attrs = f" xmlns={quoteattr(ns)}" + attrs
    pad = "  " * depth
    if len(el) == 0:
        return f"{pad}<{name}{attrs}/>\n"
    inner = "".join(pretty(child, ns or parent_ns, depth + 1) for child in el)
    return f"{pad}<{name}{attrs}>\n{inner}{pad}</{name}>\n"


def main():
    env = load_services_env(sys.argv[1])
    request = (f"<iq type='get' to='{env['XMPP_COMPONENT_JID']}' id='demo-1'>"
               f"<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    with Client(env["XMPP_USER_ALICE"], env["XMPP_PASS_ALICE"], env["XMPP_HOST"],
                env["XMPP_C2S_PORT"]) as alice:
        print("sent:\n" + pretty(ET.fromstring(request)))
        reply = alice.iq(request)
        print("received:\n" + pretty(reply))
    return 0 if reply.get("type") == "result" else 1


if __name__ == "__main__":
    sys.exit(main())
