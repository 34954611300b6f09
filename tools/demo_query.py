"""The demo's subscriber: logs in as alice and asks filerepod for its
disco#info, printing the stanza sent and the one received.
Usage: /usr/bin/python3 tools/demo_query.py SERVICES_DIR"""

import os
import sys
import xml.dom.minidom
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from xmppclient import Client, load_services_env  # noqa: E402


def pretty(el):
    text = ET.tostring(el, encoding="unicode")
    return xml.dom.minidom.parseString(text).toprettyxml(indent="  ").split("\n", 1)[1]


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
