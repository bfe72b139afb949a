#!/usr/bin/python3
"""Every option `ringcastd --help` lists is used by a test, and every option that takes a
value refuses a bad one.

1. Coverage: the flags are parsed from `--help`; each must appear as a whole word
   (`--max-connections` does not count for `--max-connections-total`) inside a string
   in the code of at least one script under tests/integration/ or tests/conformance/
   (Python: string literals outside docstrings, read with `ast`; JavaScript: quoted
   strings outside comments). A mention in a comment or docstring does not count. The
   failure names each flag no test uses.
2. Refusal: for every flag with a value (`--flag N`, `PATH`, `HOST:PORT`, `NS[,NS]`),
   each of its bad values (by kind: "abc", "-1", "1.5", "", a number past 2^64; for
   HOST:PORT also a missing or out-of-range port; for PATH a file that does not exist;
   for --echo paths it may not take; for --client-publish names it may not take), given
   as `--flag VALUE` and as `--flag=VALUE`, started for real (`--listen 127.0.0.1:0`),
   must exit with status 2 (a configuration error) within 20 s without printing
   "listening", with a stderr line naming the flag. The flag given last without a value
   must say it needs one. A server that starts is killed and reported.
3. Two values that were once let through, each a check of its own: `--api-key-file ""`
   (an unset shell variable) must not start a server with no API key at all;
   `--listen 300.1.1.1:0` must fail --check-config as it fails a start, naming --listen.

Usage: flags_covered.py PATH/TO/ringcastd (needs no client library).
"""

import ast
import concurrent.futures
import os
import re
import select
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
DIRS = [os.path.join(TESTS, "integration"), os.path.join(TESTS, "conformance")]

NUMBER_BAD = ["abc", "-1", "1.5", "", "12abc", "99999999999999999999999"]
BAD = {
    "HOST:PORT": ["abc", "-1", "", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:abc",
                  "127.0.0.1:-1"],
    "PATH": ["/nonexistent/ringcast-test/api-key", "."],
    # An empty value or a trailing comma is taken as "no (more) namespaces": lenient, left.
    "NS[,NS]": ["user", "a:b", "bad ns", ",", "chat,,x", "chat,user"],
    # A trust list is never lenient: empty, a trailing comma or host bits set are refused.
    "CIDR[,CIDR]": ["abc", "-1", "1.5", "", ",", "10.0.0.0/8,", "10.0.0.1/8", "10.0.0.0/33",
                    "::1/129", "127.1", "10.0.0.0/08", "localhost"],
    "TEXT": [""],
    "ENGINE": ["abc", "-1", "1.5", "", "Redis", "embedded,redis"],
    "URL": ["abc", "-1", "", "http://127.0.0.1", "redis://", "redis://127.0.0.1:99999",
            "redis://127.0.0.1:abc", "redis://127.0.0.1/abc", "redis://127.0.0.1/-1",
            "redis://a b", "redis://[::1", "rediss://127.0.0.1"],
    "PREFIX": ["", "a b", "a*", "x" * 65, "a/b"],
    "QUEUE:EVENT:CHANNEL": ["abc", "", "q", "q:progress", "q:progress:", ":progress:job:x",
                            "q:pro gress:x", "q:progress:sys:x", "q:progress:job:{job}",
                            "q:progress:a b", "q/x:progress:job:{jobId}"],
    "EXCHANGE:KEY:CHANNEL": ["abc", "", "quota", "quota:quota.*", "quota:quota.*:",
                             ":quota.*:x", "quota::x", "quo ta:k:x", "quota:k:sys:x",
                             "quota:k:user:{user id}", "quota:k:a b", "q/x:k:x"],
    "NAME:RULE[,RULE]": ["abc", "", "user:public", "chat:", "chat:public,private",
                         "chat:bogus", "chat:public,publish,publish"],
}
ECHO_BAD = ["abc", "-1", "", "/", "/ws", "/healthz", "/api/x", "/a b", "/ech?o"]


def parse_help(text):
    """{flag: metavar or None} from the option lines of --help."""
    flags = {}
    for line in text.splitlines():
        m = re.match(r"\s{1,4}(--[a-z][a-z-]*)(?:\s+([A-Z][A-Z:\[\],]*))?(?:\s|,|$)", line)
        if m:
            flags[m.group(1)] = m.group(2)
            # "--version, --help": more flags after a comma.
            for extra in re.findall(r",\s*(--[a-z][a-z-]*)", line[:40]):
                flags.setdefault(extra, None)
    return flags


def python_strings(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                docstrings.add(id(body[0].value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            out.append(node.value)
    return out


def js_strings(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"(?m)^\s*//.*$", "", text)
    text = re.sub(r"\s//[^'\"`\n]*$", "", text, flags=re.M)
    return re.findall(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|`(?:[^`\\]|\\.)*`", text)


def used_flags(flags):
    strings = []
    for d in DIRS:
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if name.endswith(".py"):
                strings += python_strings(path)
            elif name.endswith(".js"):
                strings += js_strings(path)
    blob = "\n".join(strings)
    return {f for f in flags if re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", blob)}


def bad_values(flag, metavar):
    if flag == "--echo":
        return ECHO_BAD
    return BAD.get(metavar, NUMBER_BAD)


def attempt(binary, args, cwd, listen=True):
    """Starts ringcastd for real on an ephemeral port; returns (status, stdout, stderr),
    status None when it started listening (it is killed at once) or ran for 20 s."""
    env = {k: v for k, v in os.environ.items() if k != "RINGCAST_API_KEY"}
    first = ["--listen", f"{support.LOOPBACK}:0"] if listen else []
    p = subprocess.Popen([binary, *first, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = b""
    deadline = time.monotonic() + 20
    started = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            continue
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        out += chunk
        if b"listening" in out:
            started = True
            break
    if started or p.poll() is None:
        p.kill()
    try:
        rest, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        rest, err = b"", b""
    out = (out + rest).decode("utf-8", "replace")
    err = err.decode("utf-8", "replace")
    return (None if started or p.returncode < 0 else p.returncode), out, err


def attempts(binary, arg_lists, cwd, listen=True):
    """attempt() for each argument list, four at a time (each is a short-lived process)."""
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda a: (a, *attempt(binary, a, cwd, listen)), arg_lists))


def cases(binary):
    state = {}

    def read_help():
        r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=20)
        expect(r.returncode == 0, f"--help exit {r.returncode}")
        flags = parse_help(r.stdout)
        expect(len(flags) >= 30 and "--listen" in flags and flags["--listen"] == "HOST:PORT"
               and "--version" in flags and flags.get("--insecure", "x") is None,
               f"parsed {len(flags)} flags from --help: {flags}")
        state["flags"] = flags
        print(f"     {len(flags)} flags, {sum(1 for v in flags.values() if v)} with a value",
              flush=True)

    def every_flag_is_used():
        flags = state["flags"]
        used = used_flags(flags)
        missing = sorted(set(flags) - used)
        expect(not missing, f"flags no script under tests/integration or tests/conformance "
               f"uses: {missing}")

    def bad_values_refused():
        flags = state["flags"]
        problems = []
        with tempfile.TemporaryDirectory() as cwd:
            for flag, metavar in sorted(flags.items()):
                if not metavar:
                    continue
                forms = []
                for v in bad_values(flag, metavar):
                    forms.append([flag, v])
                    forms.append([f"{flag}={v}"])
                for args, code, out, err in attempts(binary, forms, cwd):
                    if code is None:
                        problems.append(f"{args}: started (killed)")
                    elif code != 2 or flag not in err:
                        problems.append(f"{args}: exit {code}, stderr {err.strip()[-200:]!r}")
                (_, code, out, err), = attempts(binary, [[flag]], cwd)
                if code != 2 or flag not in err or "value" not in err:
                    problems.append(f"[{flag}] last, without a value: exit {code}, "
                                    f"{err.strip()[-200:]!r}")
        expect(not problems, f"{len(problems)} bad values not refused as required:\n  "
               + "\n  ".join(problems))

    def empty_key_file_refused():
        with tempfile.TemporaryDirectory() as cwd:
            results = attempts(binary, [["--api-key-file", ""], ["--api-key-file="]], cwd)
        bad = [(a, code, err.strip()[-160:]) for a, code, out, err in results
               if code is None or code == 0 or "--api-key-file" not in err]
        expect(not bad, f"an empty --api-key-file (e.g. from an unset $VARIABLE) must be "
               f"refused naming the flag; instead: {bad} (None = it started, with no API "
               f"key at all)")

    def unresolvable_listen_host():
        with tempfile.TemporaryDirectory() as cwd:
            (_, code, out, err), = attempts(binary, [["--listen", "300.1.1.1:0"]], cwd,
                                            listen=False)
            expect(code not in (None, 0) and "--listen" in err,
                   f"--listen 300.1.1.1:0 (no such host): exit {code}, stderr "
                   f"{err.strip()[-200:]!r}; expected a refusal naming --listen")
            r = subprocess.run([binary, "--listen", "300.1.1.1:0", "--check-config"],
                               capture_output=True, text=True, timeout=20)
            expect(r.returncode != 0, f"--check-config calls --listen 300.1.1.1:0 fine "
                   f"({r.stdout.strip()!r}), but starting with it fails: it does not "
                   f"validate the listen host")

    return [
        ("--help parses into flags", read_help),
        ("every --help flag is used by a script under tests/", every_flag_is_used),
        ("every flag with a value refuses bad values at start (exit 2, names the flag)",
         bad_values_refused),
        ("an empty --api-key-file value is refused", empty_key_file_refused),
        ("--listen with a host that does not resolve: refused naming --listen, also by "
         "--check-config", unresolvable_listen_host),
    ]


if __name__ == "__main__":
    binary = support.binary_from_argv()
    sys.exit(support.run_cases(cases(binary), "flags in --help: covered and validated",
                               case_timeout=600))
