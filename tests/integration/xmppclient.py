"""A small synchronous XMPP client for filerepo's integration tests.

Wraps slixmpp 1.8 (Debian's python3-slixmpp: run tests with /usr/bin/python3)
and runs its asyncio loop in a background thread, so tests read top to bottom:

    env = load_services_env()            # $FILEREPO_SERVICES_DIR/services.env
    with Client(env["XMPP_USER_ALICE"], env["XMPP_PASS_ALICE"],
                env["XMPP_HOST"], env["XMPP_C2S_PORT"]) as alice:
        info = alice.iq("<iq type='get' to='files.localhost'>"
                        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        assert info.get("type") == "result", error_condition(info)
        msg = alice.wait_message(lambda m: pubsub_items(m), timeout=5)

Stanzas go out as raw XML text and come back as xml.etree.ElementTree
Elements whose tags carry their namespace ("{jabber:client}iq",
"{http://jabber.org/protocol/disco#info}query"); see NS and find().

Why not slixmpp's own API: make_iq() gives every IQ the id "0", and the
`message` event fires only for messages with a body (pubsub events have none),
so this module sends raw stanzas and listens with raw stream handlers.
"""

import asyncio
import copy
import itertools
import os
import re
import ssl
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher.base import MatcherBase

__all__ = ["load_services_env", "Client", "XmppError", "NS", "find",
           "error_condition", "pubsub_items"]

NS = {
    "client": "jabber:client",
    "stanzas": "urn:ietf:params:xml:ns:xmpp-stanzas",
    "disco_info": "http://jabber.org/protocol/disco#info",
    "disco_items": "http://jabber.org/protocol/disco#items",
    "pubsub": "http://jabber.org/protocol/pubsub",
    "pubsub_owner": "http://jabber.org/protocol/pubsub#owner",
    "pubsub_event": "http://jabber.org/protocol/pubsub#event",
    "data": "jabber:x:data",
    "rsm": "http://jabber.org/protocol/rsm",
    "fis": "urn:xmpp:fis:0",
}


class XmppError(Exception):
    """Connection, authentication or timeout failure."""


def load_services_env(dir=None):
    """KEY=VALUE pairs of services.env in `dir` (default $FILEREPO_SERVICES_DIR)."""
    dir = dir or os.environ.get("FILEREPO_SERVICES_DIR")
    if not dir:
        raise XmppError("FILEREPO_SERVICES_DIR is not set "
                        "(start the services with tools/services.sh start DIR)")
    path = os.path.join(dir, "services.env")
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                env[key] = value
    return env


def find(el, path):
    """ElementTree find() with the NS prefixes, e.g. find(iq, 'disco_items:query')."""
    return el.find(path, NS)


def error_condition(el):
    """The defined condition of an error stanza ('item-not-found', ...), else None."""
    if el is None or el.get("type") != "error":
        return None
    err = el.find("{jabber:client}error")
    if err is None:
        return "unknown-error"
    for child in err:
        if child.tag.startswith("{%s}" % NS["stanzas"]) and not child.tag.endswith("}text"):
            return child.tag.split("}", 1)[1]
    return "unknown-error"


def pubsub_items(msg):
    """[(node, item_id), ...] published items in a pubsub event <message/>."""
    out = []
    event = msg.find("{%s}event" % NS["pubsub_event"])
    if event is None:
        return out
    for items in event.findall("{%s}items" % NS["pubsub_event"]):
        for item in items.findall("{%s}item" % NS["pubsub_event"]):
            out.append((items.get("node"), item.get("id")))
    return out


class _Match(MatcherBase):
    """Match stanzas by a plain predicate on their XML."""

    def match(self, stanza):
        return self._criteria(stanza.xml)


class Client:
    """One c2s session. Methods block; callbacks run on a private loop thread.

    tls=False connects in clear (fine on loopback; SCRAM is used); tls=True
    uses STARTTLS if offered and does NOT verify the certificate (the test
    servers use a self-signed one). One Client is one session: after close()
    or a server restart, make a new Client to reconnect.
    """

    _ids = itertools.count(1)

    def __init__(self, jid, password, host="127.0.0.1", port=5222, tls=False):
        self.jid, self.password = jid, password
        self.address = (host, int(port))
        self.tls = tls
        self._prefix = "t%s-" % uuid.uuid4().hex[:8]
        self._lock = threading.Condition()
        self._replies = {}      # iq id -> reply Element (or None while waiting)
        self._messages = []     # received <message/> Elements not yet taken
        self._serve = None      # see serve()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="xmpp-" + jid, daemon=True)
        self._thread.start()
        self._xmpp = self._call(self._make)
        self.connected = False

    # -- loop plumbing ---------------------------------------------------

    def _call(self, fn, *args, timeout=10):
        """Run fn(*args) on the loop thread and return its result."""
        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def _make(self):
        x = slixmpp.ClientXMPP(self.jid, self.password)
        x.loop = self._loop
        x.whitespace_keepalive = False
        if self.tls:
            x.ssl_context.check_hostname = False
            x.ssl_context.verify_mode = ssl.CERT_NONE
        x.register_handler(Callback(
            "filerepo iq replies",
            _Match(lambda e: e.tag == "{jabber:client}iq"
                   and e.get("type") in ("result", "error")),
            self._on_iq))
        x.register_handler(Callback(
            "filerepo iq requests",
            _Match(lambda e: e.tag == "{jabber:client}iq" and self._serve is not None
                   and e.get("type") in ("get", "set")),
            self._on_request))
        x.register_handler(Callback(
            "filerepo messages",
            _Match(lambda e: e.tag == "{jabber:client}message"),
            self._on_message))
        return x

    def _on_iq(self, stanza):
        with self._lock:
            if stanza["id"] in self._replies:
                self._replies[stanza["id"]] = copy.deepcopy(stanza.xml)
                self._lock.notify_all()

    def _on_request(self, stanza):
        serve = self._serve
        reply = serve(copy.deepcopy(stanza.xml)) if serve else None
        if reply:
            self._xmpp.send_raw(reply)

    def _on_message(self, stanza):
        with self._lock:
            self._messages.append(copy.deepcopy(stanza.xml))
            self._lock.notify_all()

    # -- public API ------------------------------------------------------

    def connect(self, timeout=10, presence=True):
        """Connect, authenticate, bind; then send initial presence (needed to
        receive pubsub notifications). Raises XmppError on failure."""
        done = threading.Event()
        result = {}

        def ok(_):
            result["ok"] = True
            done.set()

        def failed(why):
            result.setdefault("error", why)
            done.set()

        def setup():
            x = self._xmpp
            x.add_event_handler("session_start", ok, disposable=True)
            x.add_event_handler("failed_auth", lambda _: failed("authentication failed"),
                                disposable=True)
            x.add_event_handler("connection_failed", lambda e: failed("connection failed: %s" % e),
                                disposable=True)
            x.connect(self.address, force_starttls=False, disable_starttls=not self.tls)

        self._call(setup)
        if not done.wait(timeout) or "ok" not in result:
            self._call(self._xmpp.abort)
            self.close()    # this Client is spent: no thread or loop left behind
            raise XmppError("%s: cannot connect to %s:%s: %s" % (
                self.jid, *self.address, result.get("error", "timeout")))
        self.connected = True
        self._xmpp.add_event_handler("disconnected", self._on_disconnected)
        if presence:
            self.send("<presence/>")
            # The server handles a session's stanzas in order: once this
            # answer is here, the presence has made the session available,
            # so a notification published right after connect() reaches it.
            self.iq("<iq type='get' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                    % self.jid.split("@")[-1].split("/")[0])
        return self

    def _on_disconnected(self, _):
        with self._lock:
            self.connected = False
            self._lock.notify_all()

    def send(self, xml_text):
        """Send one raw stanza (presence, message, iq) without waiting."""
        self._loop.call_soon_threadsafe(self._xmpp.send_raw, xml_text)

    def iq(self, xml_text, timeout=10):
        """Send a raw <iq/> (any `to`, any payload) and return the reply,
        type result or error, as an Element. An id is added when absent."""
        root = ET.fromstring(xml_text)
        if root.tag != "iq":
            raise ValueError("not an <iq/>: %s" % xml_text[:80])
        iq_id = root.get("id")
        if not iq_id:
            iq_id = "%s%d" % (self._prefix, next(self._ids))
            xml_text = re.sub(r"^\s*<iq\b", "<iq id='%s'" % iq_id, xml_text, count=1)
        with self._lock:
            self._replies[iq_id] = None
        self.send(xml_text)
        with self._lock:
            self._lock.wait_for(
                lambda: self._replies[iq_id] is not None or not self.connected, timeout)
            reply = self._replies.pop(iq_id)
        if reply is None:
            why = "disconnected" if not self.connected else "no reply within %ss" % timeout
            raise XmppError("%s: iq %s: %s: %s" % (self.jid, iq_id, why, xml_text[:200]))
        return reply

    def serve(self, fn):
        """Hands every IQ get/set received to fn(Element), on the loop
        thread; fn returns the raw reply to send, or None to send nothing.
        serve(None) goes back to slixmpp's default (feature-not-implemented)."""
        self._serve = fn

    def wait_message(self, predicate, timeout=10):
        """Return (and take) the first received <message/> Element for which
        predicate(el) is true, waiting up to `timeout` s; messages that
        arrived earlier count. Raises XmppError on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for i, m in enumerate(self._messages):
                    if predicate(m):
                        return self._messages.pop(i)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise XmppError("%s: no matching message within %ss (%d others received)"
                                    % (self.jid, timeout, len(self._messages)))
                self._lock.wait(left)

    def messages(self):
        """Received messages not yet taken (copies; for diagnostics)."""
        with self._lock:
            return list(self._messages)

    def close(self, timeout=5):
        """Close the stream (if open) and stop the loop thread. Idempotent."""
        if not self._thread.is_alive():
            return
        if self.connected:
            try:
                fut = asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop)
                fut.result(timeout)
            except Exception:
                pass
        self.connected = False

        async def cancel_all():
            for t in asyncio.all_tasks():
                if t is not asyncio.current_task():
                    t.cancel()
        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(timeout)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()

    async def _disconnect(self):
        fut = self._xmpp.disconnect(wait=1.0)
        if fut is not None:
            await fut

    def __enter__(self):
        if not self.connected:
            self.connect()
        return self

    def __exit__(self, *exc):
        self.close()
