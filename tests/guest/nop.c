// SPDX-License-Identifier: GPL-2.0
/*
 * The baseline of tests/guest/selftests.sh: a static program that does
 * nothing.  Run as the mm selftests are run, it counts the calls to
 * change_protection() that come with starting any static program (the
 * mprotect() of its RELRO segment, in the program and in busybox's
 * timeout), which a selftest must exceed to count as reaching the walker.
 */
int main(void)
{
	return 0;
}
