#!/usr/bin/python3
"""The shipped systemd unit (systemd/ringcastd.service) and its tuning drop-in pass
`systemd-analyze verify` with no warning at all (an unknown or misspelt key is only a
warning there, so any output fails), its ExecStart command line is one ringcastd accepts
(`--check-config`), and it is the notify service the server speaks to
(tests/integration/systemd_notify.py): Type=notify, NotifyAccess=main, a WatchdogSec= of at
least a second (ringcastd's tick is a quarter of it, never below 200 ms).

Usage: systemd_unit.py PATH/TO/ringcastd. Fails without systemd-analyze (apt-get install
systemd).
"""

import os
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, "systemd", "ringcastd.service")
DROP_IN = os.path.join(ROOT, "tuning", "systemd", "ringcastd.service.d", "limits.conf")


def keys(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def main():
    binary = os.path.abspath(support.binary_from_argv())
    if shutil.which("systemd-analyze") is None:
        support.missing("systemd-analyze (apt-get install systemd)")
    unit = keys(UNIT)

    def verifies_without_a_word():
        tmp = tempfile.mkdtemp(prefix="ringcast-unit-")
        try:
            text = open(UNIT).read().replace("/usr/local/bin/ringcastd", binary)
            path = os.path.join(tmp, "ringcastd.service")
            open(path, "w").write(text)
            os.mkdir(path + ".d")
            shutil.copy(DROP_IN, os.path.join(path + ".d", "limits.conf"))
            r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True,
                               text=True, timeout=60, cwd=tmp)
            said = (r.stdout + r.stderr).strip()
            expect(r.returncode == 0 and said == "",
                   f"systemd-analyze verify: status {r.returncode}, said:\n{said}")
        finally:
            shutil.rmtree(tmp)

    def the_command_line_is_accepted():
        expect(len(unit.get("ExecStart", [])) == 1, f"one ExecStart: {unit.get('ExecStart')}")
        argv = shlex.split(unit["ExecStart"][0])
        expect(argv[0] == "/usr/local/bin/ringcastd", f"ExecStart runs {argv[0]}")
        r = subprocess.run([binary, *argv[1:], "--check-config"], capture_output=True,
                           text=True, timeout=30)
        expect(r.returncode == 0, f"{argv[1:]} --check-config: {r.returncode} {r.stderr}")

    def it_is_the_notify_service():
        expect(unit.get("Type") == ["notify"], f"Type={unit.get('Type')}")
        expect(unit.get("NotifyAccess") == ["main"], f"NotifyAccess={unit.get('NotifyAccess')}")
        wd = unit.get("WatchdogSec", [""])[0]
        expect(wd.endswith("s") and wd[:-1].isdigit() and int(wd[:-1]) >= 1,
               f"WatchdogSec={wd}")
        expect(unit.get("Restart") == ["on-failure"], "Restart=on-failure (the watchdog's abort)")
        for k in ("NoNewPrivileges", "ProtectSystem", "CapabilityBoundingSet", "LimitNOFILE",
                  "LimitMEMLOCK", "User"):
            expect(k in unit, f"{k}= missing")
        expect(unit["CapabilityBoundingSet"] == [""], "no capabilities")

    status = support.run_cases([
        ("systemd-analyze verify: no error, no warning", verifies_without_a_word),
        ("ExecStart's flags pass --check-config", the_command_line_is_accepted),
        ("Type=notify with a watchdog, hardened", it_is_the_notify_service),
    ], title="systemd unit")
    sys.exit(status)


if __name__ == "__main__":
    main()
