#!/bin/bash
# tests/tuning/test_tuning.sh SOURCE_ROOT: the host-tuning scripts in tuning/.
#
# Runs tuning/check, tuning/apply and tuning/irq-affinity read-only against this host, then
# for real against temporary roots (apply --root, irq-affinity --root with a made-up
# four-queue NIC). Never changes the host: apply runs without --apply or with --root only.
# Passes as root and not. Prints TAP (one line per check, the plan last, since some checks
# depend on the host); exit 0 pass, 1 fail (also without /usr/bin/python3).
#
# ok() always succeeds, so "condition && ok ... || fail ..." below is an if/else.
# shellcheck disable=SC2015
set -euo pipefail

src=${1:?usage: test_tuning.sh SOURCE_ROOT}
tuning=$src/tuning
conf=$tuning/sysctl.d/90-ringcast.conf
if [[ ! -x /usr/bin/python3 ]]; then
    echo "Bail out! tuning/check and irq-affinity need /usr/bin/python3 (bash .ci/install)"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
checks=0
ok() {
    checks=$((checks + 1))
    echo "ok $checks - $*"
}
fail() {
    checks=$((checks + 1))
    echo "not ok $checks - $*"
    failures=$((failures + 1))
}
# run NAME CMD...: runs CMD with stdout/stderr in $tmp/NAME.{out,err}; sets $rc.
run() {
    local name=$1
    shift
    rc=0
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
}
no_stderr() {
    if [[ -s $tmp/$1.err ]]; then
        fail "$1 wrote to stderr:"
        sed 's/^/#    /' "$tmp/$1.err"
    fi
}

# The keys of the sysctl file (the optional "-" dropped).
mapfile -t keys < <(awk '!/^[[:space:]]*([#;]|$)/ {
    sub(/^[[:space:]]*-?[[:space:]]*/, ""); sub(/[[:space:]]*=.*/, ""); print }' "$conf")
((${#keys[@]} > 0)) || { echo "Bail out! no keys in $conf"; exit 1; }

# Every key carries a "[rule] reason" comment right above it.
undocumented=$(awk '/^[[:space:]]*-?[a-z]/ && prev !~ /^# \[(min|max|exact|each-min|width-min)\] ./ {
    print FNR": "$0 } { prev = $0 }' "$conf")
[[ -z $undocumented ]] && ok "every key has a [rule] reason comment" ||
    fail "keys without a [rule] reason comment: $undocumented"

# procps sysctl reads the file as we do (--dry-run parses and prints, writes nothing).
if command -v sysctl >/dev/null && sysctl --help 2>&1 | grep -q -- '--dry-run'; then
    parsed=$(sysctl --dry-run -p "$conf" 2>&1 | sed 's/ = .*//')
    [[ $parsed == "$(printf '%s\n' "${keys[@]}")" ]] &&
        ok "sysctl --dry-run -p reads the same ${#keys[@]} keys" ||
        fail "sysctl --dry-run -p disagrees: $parsed"
fi

# --- check ---------------------------------------------------------------------------
run check "$tuning/check"
check_rc=$rc
[[ $rc == 0 || $rc == 1 ]] && ok "check exits $rc (0 or 1)" || fail "check exit $rc"
no_stderr check
missing=()
for key in "${keys[@]}"; do
    grep -qF -- " $key " "$tmp/check.out" || missing+=("$key")
done
((${#missing[@]} == 0)) && ok "check names all ${#keys[@]} keys" ||
    fail "check does not name: ${missing[*]}"
grep -qE '^summary: [0-9]+ OK, [0-9]+ LOW, [0-9]+ DIFFERENT' "$tmp/check.out" &&
    ok "check prints a summary" || fail "check: no summary line"

run check_quiet "$tuning/check" --quiet
[[ $rc == "$check_rc" ]] && ok "check --quiet exits like check" || fail "check --quiet exit $rc"
no_stderr check_quiet
if grep -qvE '^(LOW|DIFFERENT) ' "$tmp/check_quiet.out"; then
    fail "check --quiet printed a line that is not LOW/DIFFERENT"
else
    ok "check --quiet prints only lacking items"
fi

run check_json "$tuning/check" --json
no_stderr check_json
if /usr/bin/python3 - "$tmp/check_json.out" "$rc" "$check_rc" "${keys[@]}" <<'EOF'; then
import json, sys
path, rc, check_rc, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
doc = json.load(open(path))
items = doc["items"]
assert rc == check_rc, f"--json exit {rc}, plain exit {check_rc}"
assert isinstance(doc["meets"], bool) and doc["meets"] == (rc == 0), "meets vs exit status"
for i in items:
    assert set(i) >= {"name", "status", "current", "wanted", "reason"}, i
    assert i["status"] in ("OK", "LOW", "DIFFERENT"), i
for s in ("OK", "LOW", "DIFFERENT"):
    assert doc["counts"][s] == sum(1 for i in items if i["status"] == s), s
names = {i["name"] for i in items}
assert set(keys) <= names, set(keys) - names
EOF
    ok "check --json is valid JSON naming every key"
else
    fail "check --json (see above)"
fi

run check_bad "$tuning/check" --no-such-option
[[ $rc == 2 ]] && ok "check: bad argument exits 2" || fail "check: bad argument exit $rc"

# --- apply, dry run against this host: prints the plan, changes nothing -----------------
dests=(/etc/sysctl.d/90-ringcast.conf /etc/security/limits.d/90-ringcast.conf
    /etc/systemd/system/ringcastd.service.d/limits.conf)
state() {
    local f
    for f in "${dests[@]}"; do
        if [[ -e $f ]]; then cksum <"$f"; else echo "absent $f"; fi
    done
    for key in "${keys[@]}"; do
        cat "/proc/sys/${key//.//}" 2>/dev/null || echo "absent $key"
    done
}
before=$(state)
run apply_dry "$tuning/apply"
after=$(state)
[[ $rc == 0 ]] && ok "apply (dry run) exits 0" || fail "apply (dry run) exit $rc"
no_stderr apply_dry
[[ $before == "$after" ]] && ok "apply (dry run) changed no file and no sysctl" ||
    fail "apply (dry run) changed the host"
grep -q '^dry run: nothing was changed' "$tmp/apply_dry.out" &&
    ok "apply (dry run) says it changed nothing" || fail "apply (dry run): no dry-run line"
planned=0
for f in "${dests[@]}"; do
    grep -qE "^(would run: install .* $f|unchanged: $f)\$" "$tmp/apply_dry.out" &&
        planned=$((planned + 1))
done
((planned == ${#dests[@]})) && ok "apply (dry run) plans every file" ||
    fail "apply (dry run) planned $planned of ${#dests[@]} files"
grep -qE '^(would run: sysctl -p /etc/sysctl.d/90-ringcast.conf|unchanged: sysctls)' \
    "$tmp/apply_dry.out" && ok "apply (dry run) plans the sysctls" ||
    fail "apply (dry run): no sysctl plan"

mkdir "$tmp/dry"
run apply_dry_root "$tuning/apply" --root "$tmp/dry"
[[ $rc == 0 && -z $(find "$tmp/dry" -mindepth 1) ]] &&
    ok "apply --root (dry run) wrote nothing" || fail "apply --root (dry run): exit $rc or files"

run apply_bad "$tuning/apply" --no-such-option
[[ $rc == 2 ]] && ok "apply: bad argument exits 2" || fail "apply: bad argument exit $rc"
if ((EUID != 0)); then
    run apply_noroot "$tuning/apply" --apply
    [[ $rc == 2 ]] && grep -q 'needs root' "$tmp/apply_noroot.err" &&
        ok "apply --apply refuses without root" || fail "apply --apply without root: exit $rc"
fi

# --- apply --apply into a temporary root, twice -------------------------------------------
root=$tmp/root
mkdir "$root"
run apply_root "$tuning/apply" --apply --root "$root"
[[ $rc == 0 ]] && ok "apply --apply --root exits 0" || fail "apply --apply --root exit $rc"
no_stderr apply_root
pairs=("sysctl.d/90-ringcast.conf:${dests[0]}" "limits.d/90-ringcast.conf:${dests[1]}"
    "systemd/ringcastd.service.d/limits.conf:${dests[2]}")
for pair in "${pairs[@]}"; do
    f=$root${pair#*:}
    if cmp -s "$tuning/${pair%%:*}" "$f" && [[ $(stat -c %a "$f") == 644 ]]; then
        ok "installed ${pair#*:}"
    else
        fail "not installed (or wrong mode): $f"
    fi
done
# Every key the file does not mark optional got its value.
while read -r key; do
    [[ -f $root/proc/sys/${key//.//} ]] || fail "apply --root did not write $key"
done < <(awk '!/^[[:space:]]*([#;-]|$)/ { sub(/[[:space:]]*=.*/, ""); print }' "$conf")

run apply_again "$tuning/apply" --apply --root "$root"
if [[ $rc == 0 ]] && ! grep -qE '^(run|write):' "$tmp/apply_again.out" &&
    [[ $(grep -c '^unchanged: ' "$tmp/apply_again.out") == $((${#dests[@]} + 1)) ]]; then
    ok "apply --apply --root again: everything unchanged (idempotent)"
else
    fail "apply --apply --root again is not a no-op:"
    sed 's/^/#    /' "$tmp/apply_again.out"
fi

run check_root "$tuning/check" --root "$root" --json
if /usr/bin/python3 - "$tmp/check_root.out" "${keys[@]}" <<'EOF'; then
import json, sys
doc = json.load(open(sys.argv[1]))
keys = set(sys.argv[2:])
bad = [i for i in doc["items"]
       if (i["name"] in keys or i["name"].startswith("file ")) and i["status"] != "OK"]
assert not bad, bad
EOF
    ok "check --root after apply: every sysctl and file OK"
else
    fail "check --root after apply (see above)"
fi

# --- irq-affinity ------------------------------------------------------------------------
run irq_lo "$tuning/irq-affinity" --iface lo
[[ $rc == 0 ]] && ok "irq-affinity --iface lo exits 0" || fail "irq-affinity lo exit $rc"
no_stderr irq_lo
for dev in /sys/class/net/*; do
    name=${dev##*/}
    [[ $name == lo ]] && continue
    run irq_dev "$tuning/irq-affinity" --iface "$name"
    [[ $rc == 0 ]] && ok "irq-affinity --iface $name (dry run) exits 0" ||
        fail "irq-affinity --iface $name exit $rc: $(cat "$tmp/irq_dev.err")"
    break
done
run irq_bad "$tuning/irq-affinity" --iface no-such-if0
[[ $rc == 2 ]] && ok "irq-affinity: unknown interface exits 2" || fail "irq-affinity bad iface $rc"

# A made-up four-queue NIC (ixgbe-style names) on four CPUs, under --root.
fake=$tmp/fake
pci=$fake/sys/devices/pci0000:00/0000:00:05.0
mkdir -p "$pci/msi_irqs" "$fake/sys/bus/pci/drivers/ixgbe" "$fake/sys/class/net/fake0" \
    "$fake/sys/devices/system/cpu" "$fake/proc"
ln -s "$fake/sys/bus/pci/drivers/ixgbe" "$pci/driver"
ln -s "$pci" "$fake/sys/class/net/fake0/device"
echo 0-3 >"$fake/sys/devices/system/cpu/online"
echo 0-3 >"$fake/sys/devices/system/cpu/possible"
{
    echo "           CPU0       CPU1       CPU2       CPU3"
    for q in 0 1 2 3; do
        irq=$((50 + q))
        touch "$pci/msi_irqs/$irq"
        mkdir -p "$fake/proc/irq/$irq"
        echo 0-3 >"$fake/proc/irq/$irq/smp_affinity_list"
        echo " $irq:  1  2  3  4  PCI-MSIX-0000:00:05.0  $q-edge  fake0-TxRx-$q"
        mkdir -p "$fake/sys/class/net/fake0/queues/rx-$q" "$fake/sys/class/net/fake0/queues/tx-$q"
        echo 0 >"$fake/sys/class/net/fake0/queues/rx-$q/rps_cpus"
        echo 0 >"$fake/sys/class/net/fake0/queues/tx-$q/xps_cpus"
    done
    touch "$pci/msi_irqs/54"
    mkdir -p "$fake/proc/irq/54"
    echo 0-3 >"$fake/proc/irq/54/smp_affinity_list"
    echo " 54:  0  0  0  0  PCI-MSIX-0000:00:05.0  4-edge  fake0"
} >"$fake/proc/interrupts"
run irq_fake "$tuning/irq-affinity" --root "$fake" --iface fake0 --cpus 0-3 --apply
no_stderr irq_fake
got=$(for q in 0 1 2 3; do
    printf '%s/%s/%s ' "$(cat "$fake/proc/irq/$((50 + q))/smp_affinity_list")" \
        "$(cat "$fake/sys/class/net/fake0/queues/tx-$q/xps_cpus")" \
        "$(cat "$fake/sys/class/net/fake0/queues/rx-$q/rps_cpus")"
done)
want="0/1/0 1/2/0 2/4/0 3/8/0 "
if [[ $rc == 0 && $got == "$want" && $(cat "$fake/proc/irq/54/smp_affinity_list") == 0-3 ]]; then
    ok "irq-affinity --apply on a 4-queue NIC: queue q on CPU q, XPS 1<<q, RPS off, link IRQ left"
else
    fail "irq-affinity on the fake NIC: exit $rc, got '$got', want '$want'"
    sed 's/^/#    /' "$tmp/irq_fake.out"
fi
run irq_fake_again "$tuning/irq-affinity" --root "$fake" --iface fake0 --cpus 0-3
grep -q '^nothing to change' "$tmp/irq_fake_again.out" &&
    ok "irq-affinity again: nothing to change" || fail "irq-affinity is not idempotent"

echo "1..$checks"
if ((failures)); then
    echo "# $failures check(s) failed"
    exit 1
fi
echo "# all tuning checks passed"
