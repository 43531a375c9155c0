#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make stress: boot the debug kernel (the test kernel when `make debug` has
# not built one; MPRS_KERNEL=test|debug chooses) with the guest initramfs
# and mprs_stress_only=1, so that tests/guest/init runs only the stress
# program (tests/guest/stress.c) and trinity, each under each walker:
# STRESS_MINUTES (30) in all, split evenly between {stress, trinity} x
# {c, rust}.  STRESS_SEED seeds both (default: the time; printed).
#
# Fails on any failed KTAP case (tests/guest/expected-stress.txt: a wrong
# page, a wrong return, trinity not running, the -EAGAIN retry of a walker
# never reached, counted with kretprobes), on a kernel splat
# (scripts/splat-check.py), or when the guest does not shut down.  Writes
# results/stress.md; the console stays in out[/debug]/stress/console.log.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
mprs_x86_only stress
if [ -z "${MPRS_KERNEL:-}" ]; then
	MPRS_KERNEL=test
	[ ! -f "$(MPRS_KERNEL=debug mprs_build)/arch/x86/boot/bzImage" ] ||
		MPRS_KERNEL=debug
	export MPRS_KERNEL
fi
root=$(mprs_root)
tree=$(mprs_tree)
kernel_name=$(mprs_kernel)
build=$(mprs_build)
out=$(mprs_out)/stress
minutes=${STRESS_MINUTES:-30}
seed=${STRESS_SEED:-$(date +%s)}
# Each of the four runs.
secs=$((minutes * 60 / 4))
[ "$secs" -ge 10 ] || secs=10
# Boot and shut-down, and per run the stress program's last check or
# trinity's shut-down (its timeout kills it after 60 s more).
if [ "$kernel_name" = debug ]; then boot_s=600; else boot_s=300; fi
timeout_s=${GUEST_TIMEOUT:-$((boot_s + 4 * (secs + 90)))}
mkdir -p "$out" "$root/results"

die() { echo "stress: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

kernel="$build/arch/x86/boot/bzImage"
[ -f "$kernel" ] || die "no kernel at $kernel: run make run (or make debug) first"
# The commit the run is of, taken now: the report is written half an hour
# later.  "+changes" when the guest or the scripts differ from it.
head=$(git -C "$root" rev-parse --short HEAD)
git -C "$root" diff --quiet HEAD -- tests scripts || head="$head+changes"
step "build the guest programs (gcc -static) and the initramfs"
initramfs=$("$here/initramfs.sh")

accel=$("$here/kvm-probe.sh" "$kernel")
step "boot the $kernel_name kernel under QEMU ($accel): stress and trinity," \
	"${secs}s each under each walker, seed $seed (timeout ${timeout_s}s)"
log="$out/console.log"
t0=$(date +%s)
qrc=0
mprs_boot_guest "$accel" "$kernel" "$initramfs" "$timeout_s" "$log" \
	"$MPRS_GUEST_CMDLINE mprs_stress_only=1 mprs_stress=$secs mprs_seed=$seed" || qrc=$?
wall=$(($(date +%s) - t0))
echo "    booted and ran in ${wall}s"
[ $qrc -eq 0 ] || echo "stress: QEMU exited with $qrc (137: killed after ${timeout_s}s)"

rm -f "$out/stress.json"
python3 "$tree/tools/testing/kunit/kunit.py" parse --json="$out/stress.json" \
	"$log" >"$out/parsed.log" 2>&1 || true
tail -n 3 "$out/parsed.log"
rc=0
python3 "$here/check-results.py" "$out/stress.json" \
	"$root/tests/guest/expected-stress.txt" >"$out/check.log" 2>&1 || rc=1
cat "$out/check.log"
python3 "$here/splat-check.py" "$log" "$root/tests/splat-allow.txt" \
	>"$out/splat.log" 2>&1 || rc=1
cat "$out/splat.log"
[ $qrc -eq 0 ] || rc=1

# results/stress.md, from the "# stress:" and "# trinity:" lines of the
# console and the checks above.
python3 - "$log" "$out/check.log" "$out/splat.log" "$root/results/stress.md" \
	"$kernel_name" "$seed" "$minutes" "$secs" "$wall" "$rc" "$qrc" \
	"$head" <<'PY'
import re
import sys

(log, check, splat, md, kernel, seed, minutes, secs, wall, rc, qrc,
 head) = sys.argv[1:]
lines = open(log, errors="replace").read().splitlines()
TS = re.compile(r"^\[\s*\d+\.\d+\]\s?")


def grab(prefix):
    out = []
    for line in lines:
        line = TS.sub("", line.strip())
        if line.startswith(prefix):
            out.append(line[len(prefix):].strip())
    return out


def kv(text):
    return dict(re.findall(r"(\S+?)=(\S+)", text))


def table(rows, head):
    t = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    t += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return t


stress = grab("# stress:")
trinity = grab("# trinity:")
walkers = ("c", "rust")
md_lines = [
    "# make stress",
    "",
    f"`make stress` (scripts/stress.sh) at {head}: the {kernel} kernel, "
    f"STRESS_MINUTES={minutes} ({secs} s each of stress and trinity under "
    f"each walker), seed {seed}, {wall} s of wall time (TCG, emulated).",
    "",
    f"Result: **{'PASS' if rc == '0' else 'FAIL'}**"
    + ("" if qrc == "0" else f" (QEMU exited with {qrc})"),
    "",
]

# The stress program: operations, checks, kernel counters.
ops = {w: kv(next((l.split(" ops ", 1)[1] for l in stress
                   if l.startswith(f"stress_{w} ops ")), "")) for w in walkers}
checks = {w: kv(next((l.split(" checks ", 1)[1] for l in stress
                      if l.startswith(f"stress_{w} checks ")), ""))
          for w in walkers}
vmstat = {w: kv(next((l.split(" vmstat ", 1)[1] for l in stress
                      if l.startswith(f"stress_{w} vmstat ")), ""))
          for w in walkers}
summary = {w: kv(next((l for l in stress
                       if l.startswith(f"stress_{w} seed=")
                       and " failures=" in l), ""))
           for w in walkers}
md_lines += ["## Stress (tests/guest/stress.c)", ""]
md_lines += table([[w, summary[w].get("seconds", "?"),
                    sum(int(v) for v in checks[w].values()),
                    summary[w].get("failures", "?")] for w in walkers],
                  ["walker", "seconds", "pattern checks passed", "failures"])
md_lines += ["", "Operations per kind:", ""]
names = list(dict.fromkeys(list(ops["c"]) + list(ops["rust"])))
md_lines += table([[n, ops["c"].get(n, "?"), ops["rust"].get(n, "?")]
                   for n in names], ["operation", "c", "rust"])
md_lines += ["", "Pattern checks per region:", ""]
names = list(dict.fromkeys(list(checks["c"]) + list(checks["rust"])))
md_lines += table([[n, checks["c"].get(n, "?"), checks["rust"].get(n, "?")]
                   for n in names], ["region", "c", "rust"])
md_lines += ["", "The kernel's counters over each run (/proc/vmstat):", ""]
names = list(dict.fromkeys(list(vmstat["c"]) + list(vmstat["rust"])))
md_lines += table([[n, vmstat["c"].get(n, "?"), vmstat["rust"].get(n, "?")]
                   for n in names], ["counter", "c", "rust"])

# The walkers' retry paths, counted by kretprobes in the guest.
md_lines += ["", "## Retry paths (kretprobes, ret == 0, by caller)", ""]
rows = []
for w in walkers:
    r = kv(next((l for l in stress if l.startswith(f"walker={w} eagain=")),
                ""))
    rows.append([w, r.get("eagain", "not counted"),
                 r.get("huge_pmd_fallthrough", "-"),
                 r.get("huge_pud_retry", "-"), r.get("other_callers", "-")])
md_lines += table(rows, ["walker", "eagain", "huge_pmd_fallthrough",
                         "huge_pud_retry", "other_callers"])
extra = [l for l in stress if re.match(r"(walker=\S+ (hits|trace)|no |could not)", l)]
if extra:
    md_lines += [""] + ["    " + l for l in extra]

# Trinity.
md_lines += ["", "## Trinity (syscalls attempted / succeeded)", ""]
calls = {}
totals = {}
for w in walkers:
    for l in trinity:
        m = re.match(rf"walker={w} (\d+bit) (\S+) attempted=(\d+) success=(\d+)", l)
        if m:
            calls.setdefault((m[1], m[2]), {})[w] = f"{m[3]} / {m[4]}"
        m = re.match(rf"walker={w} syscalls=(\d+) successes=(\d+)", l)
        if m:
            totals[w] = f"{m[1]} / {m[2]}"
rows = [[f"{name} ({bits})", v.get("c", "-"), v.get("rust", "-")]
        for (bits, name), v in sorted(calls.items())]
rows.append(["all", totals.get("c", "did not run"),
             totals.get("rust", "did not run")])
md_lines += table(rows, ["syscall", "c", "rust"])
seeds = [l for l in trinity if " seed=" in l or " exit=" in l]
md_lines += [""] + ["    " + l for l in seeds]

# Checks and splats.
md_lines += ["", "## Checks", "", "```"]
md_lines += [l.rstrip() for l in open(check)]
md_lines += [l.rstrip() for l in open(splat)][:200]
md_lines += ["```", ""]
open(md, "w").write("\n".join(md_lines))
PY
echo "stress: results/stress.md written"
[ $rc -eq 0 ] || die "make stress failed on the $kernel_name kernel (${log#$root/})"
echo "stress: passed"
