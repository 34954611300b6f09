#!/usr/bin/python3
"""Test of tools/ejabberd/nodetree_filerepo.erl against a running instance.

Run:  tools/services.sh start DIR
      FILEREPO_SERVICES_DIR=DIR /usr/bin/python3 tests/integration/test_nodetree.py

Builds ROOT (collection) > ROOT/dir (collection) > ROOT/dir/file (leaf) as
alice, subscribes bob to ROOT only, and checks that bob is notified of items
published in the leaf two levels down, that disco#items of a collection lists
its children, that the module's guards hold, that all of it survives an
ejabberd restart (tools/services.sh restart-xmpp DIR), and that deleting
ROOT deletes the whole subtree.

NOTE: restarts the instance's ejabberd. Exit 0 = pass, 1 = fail, 77 = no
services to test against.
"""

import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xmppclient import (Client, XmppError, error_condition, find,  # noqa: E402
                        load_services_env, pubsub_items)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUBSUB_NS = "http://jabber.org/protocol/pubsub"


class Failure(Exception):
    pass


def why(reply):
    """' (condition)' of an error reply, '' otherwise: for messages."""
    cond = error_condition(reply)
    return " (%s)" % cond if cond else ""


def check(cond, what):
    if not cond:
        raise Failure(what)
    print("ok   " + what)


def node_config(fields):
    """A pubsub#node_config form (ejabberd rejects the XEP-0214 meta-data one)."""
    xml = ["<x xmlns='jabber:x:data' type='submit'>",
           "<field var='FORM_TYPE' type='hidden'>"
           "<value>http://jabber.org/protocol/pubsub#node_config</value></field>"]
    for var, value in fields.items():
        xml.append("<field var='%s'><value>%s</value></field>" % (var, value))
    xml.append("</x>")
    return "".join(xml)


class Tree:
    def __init__(self, env):
        self.env = env
        self.service = env["XMPP_PUBSUB_JID"]

    def client(self, who):
        up = who.upper()
        return Client(self.env["XMPP_USER_" + up], self.env["XMPP_PASS_" + up],
                      self.env["XMPP_HOST"], self.env["XMPP_C2S_PORT"]).connect()

    def create(self, c, node, fields):
        return c.iq("<iq type='set' to='%s'><pubsub xmlns='%s'><create node='%s'/>"
                    "<configure>%s</configure></pubsub></iq>"
                    % (self.service, PUBSUB_NS, node, node_config(fields)))

    def configure(self, c, node, fields):
        return c.iq("<iq type='set' to='%s'><pubsub xmlns='%s#owner'>"
                    "<configure node='%s'>%s</configure></pubsub></iq>"
                    % (self.service, PUBSUB_NS, node, node_config(fields)))

    def publish(self, c, node, item_id, text):
        return c.iq("<iq type='set' to='%s'><pubsub xmlns='%s'><publish node='%s'>"
                    "<item id='%s'><entry xmlns='urn:filerepo:test'>%s</entry></item>"
                    "</publish></pubsub></iq>" % (self.service, PUBSUB_NS, node, item_id, text))

    def children(self, c, node):
        r = c.iq("<iq type='get' to='%s'><query xmlns='http://jabber.org/protocol/disco#items'"
                 " node='%s'/></iq>" % (self.service, node))
        if r.get("type") != "result":
            raise Failure("disco#items %s: %s" % (node, error_condition(r)))
        return [i.get("node") for i in find(r, "disco_items:query").findall(
            "{http://jabber.org/protocol/disco#items}item")]

    def exists(self, c, node):
        r = c.iq("<iq type='get' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'"
                 " node='%s'/></iq>" % (self.service, node))
        return r.get("type") == "result"


def notified(c, node, item_id, timeout=10):
    try:
        c.wait_message(lambda m: (node, item_id) in pubsub_items(m), timeout)
        return True
    except XmppError as e:
        print("     " + str(e))
        return False


def run(services_dir):
    env = load_services_env(services_dir)
    t = Tree(env)
    root = "repo-" + uuid.uuid4().hex[:8]
    sub, leaf = root + "/dir", root + "/dir/file"
    clients = []
    try:
        alice, bob, carol = (t.client(w) for w in ("alice", "bob", "carol"))
        clients += [alice, bob, carol]

        r = t.create(alice, root, {"pubsub#node_type": "collection"})
        check(r.get("type") == "result", "alice creates collection %s%s" % (root, why(r)))
        r = t.create(alice, sub, {"pubsub#node_type": "collection", "pubsub#collection": root})
        check(r.get("type") == "result", "alice creates collection %s in %s%s" % (sub, root, why(r)))
        r = t.create(alice, leaf, {"pubsub#collection": sub})
        check(r.get("type") == "result", "alice creates leaf %s in %s%s" % (leaf, sub, why(r)))

        check(sub in t.children(alice, root), "disco#items of %s lists %s" % (root, sub))
        check(t.children(alice, sub) == [leaf], "disco#items of %s lists just %s" % (sub, leaf))

        # The module's guards.
        r = t.create(alice, root + "/x", {"pubsub#collection": leaf})
        check(error_condition(r) == "not-acceptable", "a leaf cannot hold nodes%s" % why(r))
        r = t.create(alice, root + "/y", {"pubsub#collection": root + "/missing"})
        check(error_condition(r) == "item-not-found", "parent must exist%s" % why(r))
        r = t.create(carol, root + "/z", {"pubsub#collection": root})
        check(error_condition(r) == "forbidden", "carol cannot add to alice's collection%s" % why(r))
        r = t.configure(alice, root, {"pubsub#collection": sub})
        check(error_condition(r) == "not-acceptable", "no cycles: %s cannot go below %s%s" % (root, sub, why(r)))
        check(t.children(alice, sub) == [leaf], "%s still holds just %s" % (sub, leaf))

        r = bob.iq("<iq type='set' to='%s'><pubsub xmlns='%s'><subscribe node='%s' jid='%s'/>"
                   "</pubsub></iq>" % (t.service, PUBSUB_NS, root, env["XMPP_USER_BOB"]))
        s = find(r, "pubsub:pubsub/pubsub:subscription")
        check(s is not None and s.get("subscription") == "subscribed",
              "bob subscribes to the root collection %s%s" % (root, why(r)))

        r = t.publish(alice, leaf, "1", "first")
        check(r.get("type") == "result", "alice publishes item 1 in %s%s" % (leaf, why(r)))
        check(notified(bob, leaf, "1"), "bob is notified of item 1 in %s" % leaf)

        for c in clients:
            c.close()
        clients = []
        t0 = time.monotonic()
        subprocess.run([os.path.join(REPO, "tools", "services.sh"), "restart-xmpp",
                        env["FILEREPO_SERVICES_DIR"]], check=True)
        print("     restart-xmpp took %.1f s" % (time.monotonic() - t0))

        alice, bob = t.client("alice"), t.client("bob")
        clients += [alice, bob]
        check(sub in t.children(alice, root), "after restart: disco#items of %s lists %s" % (root, sub))
        r = t.publish(alice, leaf, "2", "second")
        check(r.get("type") == "result", "after restart: alice publishes item 2%s" % why(r))
        check(notified(bob, leaf, "2"), "after restart: bob is notified of item 2 in %s" % leaf)

        r = alice.iq("<iq type='set' to='%s'><pubsub xmlns='%s#owner'><delete node='%s'/>"
                     "</pubsub></iq>" % (t.service, PUBSUB_NS, root))
        check(r.get("type") == "result", "alice deletes %s%s" % (root, why(r)))
        check(not any(t.exists(alice, n) for n in (root, sub, leaf)),
              "deleting %s deleted %s and %s" % (root, sub, leaf))
    finally:
        for c in clients:
            c.close()


def main():
    services_dir = os.environ.get("FILEREPO_SERVICES_DIR")
    if not services_dir or not os.path.exists(os.path.join(services_dir, "services.env")):
        print("SKIP: set FILEREPO_SERVICES_DIR to a directory started with "
              "tools/services.sh start DIR", file=sys.stderr)
        return 77
    try:
        run(services_dir)
    except (Failure, XmppError, subprocess.CalledProcessError) as e:
        print("FAIL test_nodetree: %s" % e, file=sys.stderr)
        return 1
    print("PASS test_nodetree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
