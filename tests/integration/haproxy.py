#!/usr/bin/python3
"""HAProxy in front of two ringcastd nodes, with the configuration docs/haproxy.md shows.

The `haproxy` block of docs/haproxy.md is the configuration under test (read from the
page, not copied): Debian's haproxy terminates TLS with a certificate made here for
127.0.0.1 and balances over two ringcastd nodes that trust its address with
--proxy-protocol-from. Clients come from other loopback addresses (127.0.0.2 and up)
through wss://.

* Clients through HAProxy reach both nodes, subscribe and receive what each node's API
  publishes.
* The client's address reaches ringcastd (PROXY v2): with --max-connections-per-ip 2 on
  each node, five connections from five addresses all succeed while one address holding
  five at once is refused 429 at least once — more connections than the limit would allow
  if every client had HAProxy's address — and the refusal names the client's address.
* /api/ is denied at HAProxy (403); /healthz passes.
* kill -9 of a node: its clients see the connection end, reconnect to the same URL and
  HAProxy sends them to the other node, where they receive again.

Usage: haproxy.py PATH/TO/ringcastd
"""

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail  # noqa: E402

try:
    import websockets
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                   "haproxy.md")
PER_IP = 2
HANG_GUARD_S = 40.0


def config_from_doc():
    with open(DOC) as f:
        text = f.read()
    m = re.search(r"```haproxy\n(.*?)```", text, re.S)
    if not m:
        fail(f"{DOC} has no ```haproxy block")
    return m.group(1)


def free_port():
    with socket.socket() as s:
        s.bind((support.LOOPBACK, 0))
        return s.getsockname()[1]


def api(node):
    """The node's API from 127.0.0.254: 127.0.0.1 is HAProxy's address, trusted to send a
    PROXY header first, so a direct request from there would be refused."""
    import http.client
    c = support.api_client(node.port)
    c.conn = http.client.HTTPConnection(support.LOOPBACK, node.port, timeout=10,
                                        source_address=("127.0.0.254", 0))
    return c


def agent_port(node):
    """The port of the node's --agent-check-listen, from its start-up line."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in node.lines():
            m = re.search(r"agent check on [0-9.]+:(\d+)", line)
            if m:
                return int(m.group(1))
        time.sleep(0.05)
    fail(f"no 'agent check on' line\n{node.output()}")


def wait_tcp(port, deadline):
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((support.LOOPBACK, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class stack:
    """A certificate, two nodes and HAProxy, all on loopback; close() stops them."""

    def __init__(self, binary, haproxy, openssl, node_args=None, log_every_request=False):
        self.dir = tempfile.TemporaryDirectory()
        d = self.dir.name
        key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=30)
        self.cert = crt
        self.pem = os.path.join(d, "haproxy.pem")
        with open(self.pem, "w") as out:
            for part in (crt, key):
                with open(part) as f:
                    out.write(f.read())
        args = ["--shards", "2", "--insecure", "--proxy-protocol-from", "127.0.0.1/32",
                "--agent-check-listen", "127.0.0.1:0"]
        args += node_args if node_args is not None else ["--max-connections-per-ip", str(PER_IP)]
        self.nodes = [support.server(binary, args, echo_path=None) for _ in range(2)]
        self.agent_ports = [agent_port(n) for n in self.nodes]
        self.port = free_port()
        cfg = os.path.join(d, "haproxy.cfg")
        text = config_from_doc()
        if log_every_request:
            # The page logs notices only; a request's line is an info (its status counted).
            expect("local0 notice" in text, "docs/haproxy.md's log line changed")
            text = text.replace("local0 notice", "local0 info")
        with open(cfg, "w") as f:
            f.write(text)
        env = dict(os.environ,
                   RINGCAST_HAPROXY_BIND=f"{support.LOOPBACK}:{self.port}",
                   RINGCAST_HAPROXY_CERT=self.pem,
                   # 2 x 4000 + margin stays under this machine's 20,000-descriptor limit.
                   RINGCAST_HAPROXY_MAXCONN="4000",
                   RINGCAST_NODE1=f"{support.LOOPBACK}:{self.nodes[0].port}",
                   RINGCAST_NODE2=f"{support.LOOPBACK}:{self.nodes[1].port}",
                   RINGCAST_NODE1_AGENT=str(self.agent_ports[0]),
                   RINGCAST_NODE2_AGENT=str(self.agent_ports[1]))
        check = subprocess.run([haproxy, "-c", "-f", cfg], env=env, capture_output=True,
                               text=True, timeout=30)
        expect(check.returncode == 0, f"haproxy -c refused docs/haproxy.md's configuration:"
               f"\n{check.stdout}\n{check.stderr}")
        self.log = open(os.path.join(d, "haproxy.log"), "w+")
        self.haproxy = subprocess.Popen([haproxy, "-db", "-f", cfg], env=env,
                                        stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        expect(wait_tcp(self.port, time.monotonic() + 15),
               f"haproxy did not listen on {self.port}:\n{self.haproxy_output()}")
        self.tls = ssl.create_default_context(cafile=self.cert)

    def haproxy_output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def haproxy_output_all(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def url(self, user):
        return f"wss://{support.LOOPBACK}:{self.port}/ws?user={user}"

    async def connect(self, user, source):
        return await websockets.connect(self.url(user), ssl=self.tls, open_timeout=10,
                                        ping_interval=None, close_timeout=2,
                                        local_addr=(source, 0))

    def online(self, node):
        r = api(node).ok("GET", "/api/online")
        return {u["userId"] for u in r["users"]}

    def close(self):
        if self.haproxy.poll() is None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
        for n in self.nodes:
            n.kill()
        self.log.close()
        self.dir.cleanup()


async def subscribe(ws, channel):
    await ws.send(json.dumps({"op": "subscribe", "channel": channel, "id": 1}))
    while True:
        obj = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if obj.get("op") == "reply":
            expect(obj.get("ok") is True, f"subscribe {channel}: {obj}")
            return


async def next_message(ws, channel):
    """The next message on `channel` (replies and other channels skipped)."""
    while True:
        obj = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if obj.get("channel") == channel and obj.get("op") != "reply":
            return obj


async def wait_online(st, want_total, deadline_s=HANG_GUARD_S):
    """Polls both nodes' /api/online until `want_total` users are online in all."""
    deadline = time.monotonic() + deadline_s
    while True:
        per_node = [await asyncio.to_thread(st.online, n) if n.alive() else set()
                    for n in st.nodes]
        if sum(len(s) for s in per_node) == want_total:
            return per_node
        if time.monotonic() > deadline:
            fail(f"online per node {per_node}, expected {want_total} in all")
        await asyncio.sleep(0.05)


def cases(binary):
    haproxy = shutil.which("haproxy") or shutil.which("/usr/sbin/haproxy")
    if haproxy is None:
        support.missing("haproxy (apt-get install haproxy)")
    openssl = shutil.which("openssl")
    if openssl is None:
        support.missing("openssl (apt-get install openssl)")
    state = {}

    def starts():
        state["st"] = stack(binary, haproxy, openssl)

    def st():
        if "st" not in state:
            fail("the stack did not start (see the first case)")
        return state["st"]

    async def clients_reach_both_nodes():
        s = st()
        users = [f"u{i}" for i in range(8)]
        conns = []
        for i, user in enumerate(users):
            ws = await s.connect(user, f"127.0.0.{2 + i}")
            await subscribe(ws, "news")
            conns.append(ws)
        per_node = await wait_online(s, len(users))
        expect(all(per_node), f"leastconn left a node empty: {per_node}")
        expect(set().union(*per_node) == set(users), f"online users {per_node}")
        for i, node in enumerate(s.nodes):
            api(node).publish("news", {"from": i})
        for user, ws in zip(users, conns):
            msg = await next_message(ws, "news")
            node = 0 if user in per_node[0] else 1
            expect(msg["data"] == {"from": node},
                   f"{user} on node {node + 1} got {msg}")
        for ws in conns:
            await ws.close()
        await wait_online(s, 0)

    async def client_address_reaches_the_nodes():
        s = st()
        distinct = []
        for i in range(5):
            distinct.append(await s.connect(f"d{i}", f"127.0.0.{30 + i}"))
        same, refused = [], 0
        for i in range(5):
            try:
                same.append(await s.connect(f"s{i}", "127.0.0.40"))
            except websockets.exceptions.InvalidStatusCode as e:
                expect(e.status_code == 429, f"a refused connection answered {e.status_code}")
                refused += 1
        support.tap_comment(f"five addresses: 5 of 5 connected; one address: {len(same)} "
                            f"of 5 connected, {refused} refused 429")
        expect(len(same) <= 2 * PER_IP and refused >= 1,
               f"one address holding five connections: {len(same)} connected, {refused} "
               f"refused (each of the 2 nodes allows {PER_IP})")
        expect(len(distinct) + len(same) > 2 * PER_IP,
               "no more connections than HAProxy's own address would be allowed")
        lines = [line for n in s.nodes for line in n.lines()]
        expect(any("127.0.0.40" in line for line in lines),
               "no node's log names the refused client's address 127.0.0.40:\n" +
               "\n".join(lines[-20:]))
        for ws in distinct + same:
            await ws.close()
        await wait_online(s, 0)

    def api_denied_health_passes():
        s = st()
        for path, want in (("/api/stats", 403), ("/healthz", 200)):
            req = urllib.request.Request(f"https://{support.LOOPBACK}:{s.port}{path}")
            try:
                with urllib.request.urlopen(req, context=s.tls, timeout=10) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            expect(status == want, f"GET {path} through HAProxy: {status}, expected {want}")

    async def failover_after_kill():
        s = st()
        users = [f"f{i}" for i in range(6)]
        conns = {}
        for i, user in enumerate(users):
            conns[user] = await s.connect(user, f"127.0.0.{50 + i}")
            await subscribe(conns[user], "news")
        per_node = await wait_online(s, len(users))
        victim = 0 if per_node[0] else 1
        moved = sorted(per_node[victim])
        survivor = s.nodes[1 - victim]
        support.tap_comment(f"killing node {victim + 1}, which holds {moved}")
        s.nodes[victim].proc.send_signal(signal.SIGKILL)
        s.nodes[victim].proc.wait(timeout=10)
        for user in moved:
            try:
                await asyncio.wait_for(conns[user].recv(), 15)
                fail(f"{user} received a frame from a killed node")
            except websockets.exceptions.ConnectionClosed:
                pass
            # Reconnect to the same URL until HAProxy hands the client to a live node
            # (bounded: the health check takes the dead one out within seconds).
            deadline = time.monotonic() + HANG_GUARD_S
            while True:
                try:
                    conns[user] = await s.connect(user, f"127.0.0.{50 + users.index(user)}")
                    await subscribe(conns[user], "news")
                    break
                except (OSError, websockets.exceptions.WebSocketException,
                        asyncio.TimeoutError) as e:
                    if time.monotonic() > deadline:
                        fail(f"{user} could not reconnect through HAProxy: {e!r}")
                    await asyncio.sleep(0.2)
        online = await asyncio.to_thread(s.online, survivor)
        expect(online == set(users), f"after the kill the survivor holds {online}")
        api(survivor).publish("news", {"after": "kill"})
        for user in users:
            msg = await next_message(conns[user], "news")
            expect(msg["data"] == {"after": "kill"}, f"{user} got {msg}")
        for ws in conns.values():
            await ws.close()
        expect(s.haproxy.poll() is None, f"haproxy exited:\n{s.haproxy_output()}")

    return [
        ("haproxy -c accepts docs/haproxy.md's configuration; it starts in front of two "
         "nodes", starts),
        ("wss:// clients through HAProxy reach both nodes and receive", clients_reach_both_nodes),
        ("PROXY v2 carries the client's address: per-address limits count clients, not "
         "HAProxy; the refusal names the client", client_address_reaches_the_nodes),
        ("/api/ denied at HAProxy (403), /healthz passes", api_denied_health_passes),
        ("kill -9 of a node: its clients reconnect through HAProxy to the other and receive",
         failover_after_kill),
    ], state


if __name__ == "__main__":
    binary = support.binary_from_argv()
    case_list, state = cases(binary)
    try:
        status = support.run_cases(case_list, "HAProxy in front (docs/haproxy.md)",
                                   case_timeout=90.0)
    finally:
        if "st" in state:
            state["st"].close()
    sys.exit(status)
