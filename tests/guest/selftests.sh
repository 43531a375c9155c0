#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# Sourced by tests/guest/init when the command line has
# "mprs_selftests=MODE" (scripts/selftests.sh): runs the kernel's mm
# selftests of /mm/plan.txt (tests/selftests/plan.txt), built static into
# /mm/, and prints their KTAP.
#
#   MODE=test or debug: the programs whose KERNELS column names MODE, each
#   once under each walker, back to back (C first for one program, Rust
#   first for the next); program NAME under walker W becomes the suite
#   mm_NAME_W, whose cases are the program's own KTAP results.
#   MODE=survey: every program of the plan once, under the C walker only,
#   to count how often each reaches change_protection().
#
# After each program a line
#   # selftests: SUITE exit=RC seconds=S change_protection=N hugetlb=H rust_walker=R
# gives its exit status (137: killed at its time limit), its time, and how
# often it (and what it started) called change_protection(), and of those
# hugetlb_change_protection() (which no walker handles) and
# rust_change_protection_range() (the Rust walker): kprobe events, counted
# while disabled for tracing, so nothing is written to the trace.

mode=$($bb sed -n 's/.*mprs_selftests=\([a-z]*\).*/\1/p' /proc/cmdline)
plan=/mm/plan.txt
tr=/sys/kernel/tracing

# st_setup: what the programs need and run_vmtests.sh's callers give them:
# swap (the RAM disk of brd), 2 MiB hugetlb pages, an XFS file system at
# /mnt/xfs, /dev/shm, NUMA balancing off (else its scanner calls change_protection()
# in every program that runs long enough, and the counts say nothing), and
# the kprobe events that count the calls.  Says what it could not set.
st_setup() {
	bad=
	if ! $bb grep -q '^/dev/ram0 ' /proc/swaps; then
		{ $bb mkswap /dev/ram0 >/dev/null && $bb swapon /dev/ram0; } ||
			bad="$bad swap"
	fi
	echo 0 > /proc/sys/kernel/numa_balancing || bad="$bad numa_balancing"
	# The XFS file system on the virtio disk (scripts/selftests.sh).
	$bb mkdir -p /mnt/xfs
	$bb mount -t xfs /dev/vda /mnt/xfs || bad="$bad xfs"
	# POSIX shared memory (rmap's migrate.shm).
	$bb mkdir -p /dev/shm
	$bb mount -t tmpfs tmpfs /dev/shm || bad="$bad /dev/shm"
	echo 256 > /proc/sys/vm/nr_hugepages || bad="$bad nr_hugepages"
	echo "# selftests: $($bb grep HugePages_Total /proc/meminfo)"
	[ -e $tr/kprobe_events ] || $bb mount -t tracefs tracefs $tr 2>/dev/null
	for e in "p:mprs/cp change_protection" \
		 "p:mprs/cp_hugetlb hugetlb_change_protection" \
		 "p:mprs/cp_rust rust_change_protection_range"; do
		echo "$e" >> $tr/kprobe_events 2>/dev/null || bad="$bad kprobe($e)"
	done
	echo 0 > $tr/tracing_on
	for e in cp cp_hugetlb cp_rust; do
		echo 1 > $tr/events/mprs/$e/enable 2>/dev/null || bad="$bad enable($e)"
	done
	st_cpus 0
	[ -z "$bad" ] || echo "# selftests: could not set up:$bad"
}

# hits EVENT: how often EVENT was hit since its creation.
hits() {
	$bb awk -v e="$1" '$1 == e { print $2 }' $tr/kprobe_profile
}

# st_cpus 0|1: take the second vCPU of each node (1 and 3) offline, or
# bring it back.  The guest has two per node (scripts/selftests.sh) for
# migration, which needs three CPUs or more; the other programs run on one
# per node, as the other guests do: four vCPUs on a 2-core host make the
# racing threads of folio_split_race_test 25 times slower under TCG.
st_cpus() {
	for c in 1 3; do
		echo "$1" > /sys/devices/system/cpu/cpu$c/online ||
			echo "# selftests: could not set cpu$c online=$1"
	done
}

# st_exec SECONDS [cpus=4] [@USER] PROGRAM ARGS...: run PROGRAM (of /mm/
# unless a path) from /mm (ksm_functional_tests runs
# ./ksm_functional_tests), with all four vCPUs online if cpus=4 is given,
# as USER if given, its output into $out.  Sets $rc (137 when it was
# killed at SECONDS, or its status is lost), $t (seconds), and $cp, $h and
# $rs: the calls to change_protection(), hugetlb_change_protection() and
# rust_change_protection_range() (the Rust walker) of the program, what it
# started, and the busybox applets that start it.
#
# Through a pipe, as run_vmtests.sh runs them: protection_keys loses most of
# its output when it is a file.  The pipe also makes the run last until the
# last process holding it exits; at SECONDS a watchdog kills every process
# but init (this shell, PID 1), children and grandchildren included, and
# after each run whatever is left is killed too, before the counts are read.
out=/tmp/selftest.out
st_exec() {
	secs=$1
	shift
	user= cpus=
	case $1 in cpus=*) cpus=${1#cpus=}; shift ;; esac
	case $1 in @*) user=${1#@}; shift ;; esac
	[ -z "$cpus" ] || st_cpus 1
	case $1 in /*) prog=$1 ;; *) prog=/mm/$1 ;; esac
	shift
	$bb rm -f /tmp/selftest.rc
	cp0=$(hits cp) h0=$(hits cp_hugetlb) rs0=$(hits cp_rust)
	t0=$($bb date +%s)
	$bb sh -c "$bb sleep $secs; kill -9 -1" &
	dog=$!
	if [ -n "$user" ]; then
		{ (cd /mm && exec $bb su -s /bin/sh "$user" -c "exec $prog $*") < /dev/null
		  echo $? > /tmp/selftest.rc; } 2>&1 | $bb cat > $out
	else
		{ (cd /mm && exec "$prog" "$@") < /dev/null
		  echo $? > /tmp/selftest.rc; } 2>&1 | $bb cat > $out
	fi
	kill -9 "$dog" 2>/dev/null
	# From PID 1, kill(-1) spares only this shell.
	kill -9 -1 2>/dev/null
	wait
	rc=$($bb cat /tmp/selftest.rc 2>/dev/null) || rc=137
	t=$(($($bb date +%s) - t0))
	cp=$(($(hits cp) - cp0)) h=$(($(hits cp_hugetlb) - h0)) rs=$(($(hits cp_rust) - rs0))
	[ -z "$cpus" ] || st_cpus 0
}

# st_ktap: the program's output ($out) as the KTAP of one suite, one level
# down, on standard output: its version lines dropped (the suite's are
# ours), every line ended.  Its result lines are made what kunit.py reads
# whole: "ok N # SKIP reason" (kselftest's skip without a name) gets the
# reason as its name, and the XFAIL, XPASS and TODO directives, whose
# results kunit.py would read as passes without a name, become part of the
# name, in brackets; a "#" left in a name becomes "-" (kunit.py ends a name
# at the first "#").  $1: the plan to print instead of the program's.
st_ktap() {
	$bb awk -v plan="$1" '
	/^K?TAP version/ { next }
	/^1\.\.[0-9]+/ && !planned { planned = 1; print "    1.." plan; next }
	/^(ok|not ok) [0-9]+/ {
		r = $0
		head = r; sub(/ [0-9]+.*/, "", head)
		num = r; sub(/^(ok|not ok) /, "", num); sub(/[^0-9].*/, "", num)
		rest = r; sub(/^(ok|not ok) [0-9]+ ?(- )?/, "", rest)
		name = rest; dir = ""
		i = index(rest, "# ")
		if (i == 1 || (i > 1 && substr(rest, i - 1, 1) == " ")) {
			name = substr(rest, 1, i - 1); dir = substr(rest, i + 2)
		}
		sub(/ +$/, "", name)
		if (dir ~ /^(SKIP|skip)/) {
			reason = dir; sub(/^(SKIP|skip) ?/, "", reason)
			if (name == "") name = reason
			gsub(/#/, "-", name)
			print "    " head " " num " " name " # SKIP " reason
			next
		}
		if (dir != "") name = (name == "" ? "" : name " ") "[" dir "]"
		gsub(/#/, "-", name)
		print "    " head " " num " " name
		next
	}
	{ print "    " $0 }' $out
}

# st_run WALKER NAME SECONDS COMMAND...: run one program under WALKER and
# print its KTAP as the subtest mm_NAME_WALKER of the top-level result $n.
st_run() {
	w=$1 name=$2
	shift 2
	suite=mm_${name}_$w
	n=$((n + 1))
	sel=1
	select "$w" || sel=0
	st_exec "$@"
	echo "    KTAP version 1"
	echo "    # Subtest: $suite"
	kplan=$($bb sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' $out | $bb head -n 1)
	res=
	if [ -n "$kplan" ]; then
		# A plan its results do not meet (a program killed, or one whose
		# buffered output was lost) becomes the number of its results, so
		# that kunit.py does not read the next program's lines as its.
		res=$($bb grep -c '^\(ok\|not ok\) [0-9]' $out)
		st_ktap "$res"
	else
		# No KTAP of its own: its output as diagnostics, one case: its exit.
		$bb awk '{ print "    # " $0 }' $out
		echo "    1..1"
		case $rc in
		0) echo "    ok 1 $name" ;;
		4) echo "    ok 1 $name # SKIP" ;;
		*) echo "    not ok 1 $name" ;;
		esac
	fi
	[ $sel = 1 ] || echo "# selftests: could not select the $w walker for $suite"
	echo "# selftests: $suite exit=$rc seconds=$t change_protection=$cp hugetlb=$h rust_walker=$rs"
	[ -z "$res" ] || [ "$res" = "$kplan" ] ||
		echo "# selftests: $suite plan-mismatch: plan=$kplan results=$res"
	case $rc in
	0) echo "ok $n $suite" ;;
	4) echo "ok $n $suite # SKIP" ;;
	*) echo "not ok $n $suite" ;;
	esac
}

# The plan's lines for this mode: NAME SECONDS COMMAND...
st_lines() {
	$bb awk -v m="$mode" '
	/^#/ || NF < 5 { next }
	m == "survey" || index("+" $2 "+", "+" m "+") {
		$2 = ""; $3 = ""; print
	}' $plan
}

[ $$ = 1 ] || echo "# selftests: could not run as PID 1, which kill -9 -1 spares"
st_setup
# The baselines: what starting a static program that does nothing costs,
# as root and as nobody (/nop: tests/guest/nop.c).
st_exec 60 /nop
echo "# selftests: baseline exit=$rc change_protection=$cp hugetlb=$h"
st_exec 60 @nobody /nop
echo "# selftests: baseline@nobody exit=$rc change_protection=$cp hugetlb=$h"
# Each program under both walkers back to back, C first for one program,
# Rust first for the next, so that what a program leaves behind weighs on
# neither walker alone.
if [ "$mode" = survey ]; then walkers=c; else walkers="c rust"; fi
st_lines > /tmp/selftest.plan
total=$(( $($bb wc -l < /tmp/selftest.plan) * $($bb echo $walkers | $bb wc -w) ))
echo "KTAP version 1"
echo "1..$total"
n=0
while read -r name secs cmd; do
	for w in $walkers; do
		# shellcheck disable=SC2086 # the command's words
		st_run "$w" "$name" "$secs" $cmd
	done
	[ "$walkers" = c ] || { [ "$walkers" = "c rust" ] && walkers="rust c" || walkers="c rust"; }
done < /tmp/selftest.plan
