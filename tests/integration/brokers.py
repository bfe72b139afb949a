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
