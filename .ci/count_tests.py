#!/usr/bin/python3
"""Counts what a `meson test` run actually ran against what it was expected to run.

Usage: count_tests.py BUILD_DIR MESON_STATUS SUITE [SUITE ...] [--no-suite SUITE ...]

Reads BUILD_DIR/meson-logs/testlog.json and prints one line, "N passed, N failed", then
the reason for every failure that the log alone would not show. Exit 0 only when nothing
failed. What counts:

* Catch2 executables (TAP reporter): the expected cases are what the executable lists with
  `--list-test-names-only`; a case passes when it appears in the TAP output with at least
  one assertion and none failed. A listed case that never appears (the executable crashed
  before it, or it asserts nothing) is a failure by name.
* Scripts printing TAP (integration, conformance, tuning): the plan `1..N` is the expected
  count; every `ok` line passes, every `not ok` line fails, and a plan not reached counts
  the missing cases as failures. A skip plan (`1..0 # SKIP`) or meson's SKIP is a failure
  when $CI is set (CI must run everything) and is counted as skipped otherwise.
* Anything else (the corpus replays): one case, by its exit status.
* A test that meson reports failed although all its cases passed (a crash after the last
  case, a non-zero exit, a timeout) adds one failure.
* Every test of the named SUITEs that `meson test --list` knows must be in the log, and
  every SUITE must have run at least one test: a test or suite that vanished is a
  failure, not a smaller green number. A test also in a suite named after --no-suite (the
  run's own --no-suite) is not expected.
"""

import json
import os
import re
import subprocess
import sys

PLAN = re.compile(r"^1\.\.(\d+)(\s*#\s*(.*))?$")
RESULT = re.compile(r"^(not ok|ok)\b")


def suites_of(name):
    """'ringcast:integration+timing / integration_sys_stats' → ['integration', 'timing']."""
    return name.split(":", 1)[-1].split(" / ", 1)[0].split("+")


def suite_of(name):
    """'ringcast:unit+core / unit_core' → 'unit'."""
    return suites_of(name)[0]


def catch2_cases(stdout):
    """{case: failed?} from Catch2's TAP reporter: '# <case>' precedes each assertion."""
    cases, current = {}, None
    for line in stdout.splitlines():
        if line.startswith("# "):
            current = line[2:].strip()
        elif RESULT.match(line) and current is not None:
            cases[current] = cases.get(current, False) or line.startswith("not ok")
    return cases


def catch2_listed(executable):
    out = subprocess.run([executable, "--list-test-names-only"], capture_output=True,
                         text=True, timeout=60)
    if out.returncode != 0 and not out.stdout.strip():
        return None
    return [l.strip() for l in out.stdout.splitlines() if l.strip()]


def is_catch2(command):
    exe = command[0] if command else ""
    if not os.path.isfile(exe) or os.path.basename(exe).startswith(("python", "node", "bash")):
        return False
    with open(exe, "rb") as f:
        return f.read(4) == b"\x7fELF" and "-r" in command and "tap" in command


def count(test, under_ci, problems):
    """(passed, failed, skipped) for one test entry of testlog.json."""
    name, result = test["name"], test.get("result")
    stdout = test.get("stdout") or ""
    command = test.get("command") or []
    ok_exit = result in ("OK", "EXPECTEDFAIL")

    def skipped(reason):
        if under_ci:
            problems.append(f"{name}: skipped under CI ({reason})")
            return 0, 1, 0
        return 0, 0, 1

    if is_catch2(command):
        listed = catch2_listed(command[0])
        if listed is None:
            problems.append(f"{name}: {command[0]} --list-test-names-only failed")
            return 0, 1, 0
        seen = catch2_cases(stdout)
        missing = [c for c in listed if c not in seen]
        bad = [c for c, f in seen.items() if f]
        for c in missing:
            problems.append(f"{name}: case did not run or asserted nothing: {c}")
        for c in bad:
            problems.append(f"{name}: case failed: {c}")
        passed = sum(1 for c in listed if c in seen and not seen[c])
        failed = len(missing) + len(bad)
        if not ok_exit and failed == 0:
            problems.append(f"{name}: meson says {result} with every case passed "
                            f"(exit {test.get('returncode')})")
            failed = 1
        return passed, failed, 0

    plan, ok, not_ok = None, 0, 0
    for line in stdout.splitlines():
        m = PLAN.match(line.strip())
        if m and plan is None:
            plan = int(m.group(1))
            if plan == 0:
                return skipped(m.group(3) or "empty plan")
        elif RESULT.match(line):
            if line.startswith("not ok"):
                not_ok += 1
            else:
                ok += 1
    if result == "SKIP":
        return skipped("meson SKIP")
    if plan is not None:
        missing = max(0, plan - ok - not_ok)
        if missing:
            problems.append(f"{name}: {missing} of {plan} planned cases never reported")
        if not_ok:
            problems.append(f"{name}: {not_ok} case(s) failed")
        failed = not_ok + missing
        if ok + not_ok > plan:
            problems.append(f"{name}: {ok + not_ok} results for a plan of {plan}")
            failed += 1
        if not ok_exit and failed == 0:
            problems.append(f"{name}: meson says {result} with every case passed "
                            f"(exit {test.get('returncode')})")
            failed = 1
        return min(ok, plan), failed, 0
    if ok_exit:
        return 1, 0, 0
    problems.append(f"{name}: {result} (exit {test.get('returncode')})")
    return 0, 1, 0


def main():
    build, status = sys.argv[1], int(sys.argv[2])
    suites, excluded = [], set()
    args = iter(sys.argv[3:])
    for arg in args:
        if arg == "--no-suite":
            excluded.add(next(args))
        else:
            suites.append(arg)
    under_ci = bool(os.environ.get("CI"))
    log = os.path.join(build, "meson-logs", "testlog.json")
    problems = []
    if not os.path.isfile(log):
        print("0 passed, 1 failed")
        print(f"  {log} is missing: meson test did not run")
        return 1
    tests = [json.loads(l) for l in open(log) if l.strip()]
    passed = failed = skipped = 0
    for t in tests:
        p, f, s = count(t, under_ci, problems)
        passed, failed, skipped = passed + p, failed + f, skipped + s

    listed = subprocess.run(["meson", "test", "-C", build, "--list", "--no-rebuild"],
                            capture_output=True, text=True, timeout=120)
    known = [l.strip() for l in listed.stdout.splitlines()
             if " / " in l and suite_of(l.strip()) in suites and
             not excluded.intersection(suites_of(l.strip()))]
    ran = {t["name"] for t in tests}
    for name in known:
        if name not in ran:
            problems.append(f"{name}: defined but not in the log")
            failed += 1
    if not known:
        problems.append("meson test --list listed no test")
        failed += 1
    for suite in suites:
        if not any(suite_of(t["name"]) == suite for t in tests):
            problems.append(f"suite {suite}: expected, but no test of it ran")
            failed += 1
    if status != 0 and failed == 0:
        problems.append(f"meson test exited {status} for a reason the log does not show")
        failed = 1
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    for p in problems:
        print(f"  {p}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
