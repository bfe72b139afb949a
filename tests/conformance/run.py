#!/usr/bin/python3
"""Conformance suite for ringcastd --echo, in the spirit of Autobahn|Testsuite's fuzzing
client (sections 1-7 and 9), with strict verdicts. See README.md here.

Usage: run.py PATH/TO/ringcastd [--section N ...] [--case PREFIX ...] [--budget SECONDS]
       run.py --list

Starts one ringcastd on an ephemeral loopback port (server pings off, default limits),
runs each case on a fresh connection, prints TAP (the plan, then `ok`/`not ok` per
case with its verdict, ms and description; details behind `# `) and exits 1 if any case
FAILED or ringcastd is missing, 0 otherwise.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402
import support  # noqa: E402
import s1_framing  # noqa: E402
import s2_pings  # noqa: E402
import s3_reserved_bits  # noqa: E402
import s4_opcodes  # noqa: E402
import s5_fragmentation  # noqa: E402
import s6_utf8  # noqa: E402
import s7_close  # noqa: E402
import s9_limits  # noqa: E402

SECTIONS = {
    "1": ("framing", s1_framing),
    "2": ("pings and pongs", s2_pings),
    "3": ("reserved bits", s3_reserved_bits),
    "4": ("opcodes", s4_opcodes),
    "5": ("fragmentation", s5_fragmentation),
    "6": ("UTF-8 handling", s6_utf8),
    "7": ("close handling", s7_close),
    "9": ("limits and performance", s9_limits),
}

# Server pings off: a ping from the server in the middle of a case would be an
# unexpected frame under strict verdicts. Everything else stays at its default
# (16 MiB message limit, which section 9 probes exactly).
SERVER_ARGS = ["--ping-interval-ms", "0"]


def selected_cases(sections, prefixes):
    out = []
    for key in sections:
        out += SECTIONS[key][1].cases()
    if prefixes:
        out = [c for c in out if any(c.id == p or c.id.startswith(p + ".") for p in prefixes)]
    ids = [c.id for c in out]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ringcastd", nargs="?", help="path to the ringcastd binary")
    parser.add_argument("--section", action="append", choices=sorted(SECTIONS),
                        help="run only this section (repeatable); default: all")
    parser.add_argument("--case", action="append", default=[],
                        help="run only cases with this id or id prefix, e.g. 5.19 or 6.4")
    parser.add_argument("--budget", type=float, default=165.0,
                        help="seconds for the whole run; cases that would not fit are "
                             "reported FAILED (not run). Default 165 (meson's timeout is 180)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args()

    sections = args.section or sorted(SECTIONS)
    cases = selected_cases(sections, args.case)
    if args.list:
        for c in cases:
            print(f"{c.id:<10} {c.description}")
        return 0
    if not cases:
        print("no case matches the selection")
        return 2
    binary = support.binary_from_argv([sys.argv[0], args.ringcastd or ""])
    names = ", ".join(f"{k} {SECTIONS[k][0]}" for k in sections)
    support.tap_comment(f"ringcastd conformance: sections {names}; {len(cases)} cases")
    r = harness.runner(lambda: support.server(binary, SERVER_ARGS), args.budget)
    try:
        status = r.run(cases)
        return max(status, r.stop())
    finally:
        r.srv.kill()


if __name__ == "__main__":
    sys.exit(main())
