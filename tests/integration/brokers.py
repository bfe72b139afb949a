"""The real brokers the engine and bridge tests run against, from Debian's packages,
started by the tests on loopback ports and stopped with them: redis-server (no
persistence, its data in a temporary directory).

`redis_server` is a context manager; `restart()` brings a new process up on the same port
(what a Redis restart looks like to ringcastd), `cli(...)` runs redis-cli against it.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import support


def free_port():
    """A loopback port nothing listens on now (bound and released)."""
    with socket.socket() as s:
        s.bind((support.LOOPBACK, 0))
        return s.getsockname()[1]


class redis_server:
    def __init__(self, port=None, password=None):
        self.exe = shutil.which("redis-server")
        self.cli_exe = shutil.which("redis-cli")
        if self.exe is None or self.cli_exe is None:
            support.missing("redis-server and redis-cli (apt-get install redis-server)")
        self.port = port or free_port()
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="ringcast-redis-")
        self.proc = None
        self.start()

    @property
    def url(self):
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{support.LOOPBACK}:{self.port}"

    def start(self, timeout=10.0):
        args = [self.exe, "--port", str(self.port), "--bind", support.LOOPBACK,
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                support.fail(f"redis-server exited with {self.proc.returncode} at start; "
                             f"its log: {self.log()[-500:]}")
            try:
                if self.cli("PING").strip() == "PONG":
                    return
            except subprocess.SubprocessError:
                pass
            time.sleep(0.05)
        support.fail(f"redis-server on port {self.port} not up within {timeout}s")

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()
        except OSError:
            return ""

    def cli(self, *args, timeout=10.0):
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        p = subprocess.run([self.cli_exe, "-h", support.LOOPBACK, "-p", str(self.port), *args],
                           capture_output=True, text=True, timeout=timeout, env=env)
        return p.stdout

    def stop(self, timeout=10.0):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class rabbitmq_server:
    """A rabbitmq-server of its own: node ringcast-test-<pid>@localhost, its AMQP port, its
    distribution port and an epmd on ports of their own (so nothing is shared with another
    Erlang node on the machine), its database, logs, config, plugins list (empty: no
    management plugin) and Erlang cookie (HOME) in a temporary directory. `stop()` ends the
    broker and `start()` brings it back with the same data (durable queues and persistent
    messages survive, as across a real restart); `close()` ends it and the epmd and removes
    the directory. Startup takes several seconds: share one per test file.

    `rabbitmq_server.installed()` says whether Debian's rabbitmq-server is there."""

    SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"

    @staticmethod
    def installed():
        return os.access(rabbitmq_server.SERVER, os.X_OK) and shutil.which("epmd") is not None

    def __init__(self):
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = f"ringcast-test-{os.getpid()}@localhost"
        self.dir = tempfile.mkdtemp(prefix="ringcast-rabbitmq-")
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write(f"listeners.tcp.default = {support.LOOPBACK}:{self.port}\n"
                    "loopback_users = none\n")
        self.env = dict(os.environ)
        self.env.update({
            "HOME": self.dir,
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": support.LOOPBACK,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": support.LOOPBACK,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.dir, "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(self.dir, "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.dir, "enabled_plugins"),
            "RABBITMQ_PID_FILE": os.path.join(self.dir, "rabbitmq.pid"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.dir, "rabbitmq-env.conf"),
            "RABBITMQ_LOGS": os.path.join(self.dir, "log", "rabbit.log"),
        })
        self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port), "-address",
                                      support.LOOPBACK], env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"amqp://guest:guest@{support.LOOPBACK}:{self.port}/%2f"

    def start(self, timeout=60.0):
        self.out = open(os.path.join(self.dir, "server.out"), "ab")
        self.proc = subprocess.Popen([self.SERVER], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        import pika
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                support.fail(f"rabbitmq-server exited with {self.proc.returncode} at start; "
                             f"its output: {self.log()[-1500:]}")
            try:
                pika.BlockingConnection(self.parameters()).close()
                return
            except Exception:  # noqa: BLE001 - any failure means "not up yet"
                time.sleep(0.2)
        support.fail(f"rabbitmq-server on port {self.port} not up within {timeout}s: "
                     f"{self.log()[-1500:]}")

    def parameters(self):
        import pika
        return pika.ConnectionParameters(host=support.LOOPBACK, port=self.port,
                                         credentials=pika.PlainCredentials("guest", "guest"),
                                         connection_attempts=1, socket_timeout=5,
                                         blocked_connection_timeout=10)

    def log(self):
        try:
            with open(os.path.join(self.dir, "server.out"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout=30.0):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            # The Erlang VM and its port programs (erl_child_setup, inet_gethost) share
            # the session the broker was started in.
            try:
                os.killpg(self.proc.pid, 9)
            except OSError:
                pass
            self.proc.wait(10)
            self.out.close()
        self.proc = None

    def close(self):
        self.stop()
        if self.epmd is not None:
            try:
                os.killpg(self.epmd.pid, 9)
            except OSError:
                pass
            self.epmd.wait(10)
            self.epmd = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
