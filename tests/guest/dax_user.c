// SPDX-License-Identifier: GPL-2.0
/*
 * mprotect() on 1 GiB device-DAX PUD mappings, run in the guest once per
 * walker by tests/guest/init.
 *
 * Usage: dax_user SUITE_NAME /dev/daxX.Y
 *
 * The device must have a 1 GiB alignment (tests/guest/init sets it).  The
 * whole device is mapped, one byte per 4K page is written, and the number of
 * page faults that took tells how it was mapped: one fault per GiB means PUD
 * leaves.  Then the whole mapping is made read-only (a write must fault, the
 * data must stay), read-write again (writes must work without new faults
 * beyond one per PUD), and PROT_NONE (a read must fault).  Through
 * /sys/kernel/debug/mprotect/change, change_protection() must count every
 * page of the PUD leaves, and a change inside one leaf must split it (the
 * next access faults the PUD in again) with the data intact.  Prints one
 * KTAP subtest named SUITE_NAME.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "guest_test.h"

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

static char pattern(size_t i)
{
	return (char)(0xa5 ^ (i * 13));
}

static char *map;
static size_t len;

static size_t check_data(void)
{
	size_t bad = 0;

	for (size_t i = 0; i < len / PAGE; i++)
		bad += map[i * PAGE] != pattern(i);
	return bad;
}

/*
 * Writes the pattern over the whole device and checks that it took at most
 * one fault per GiB (PUD-mapped) and that the data reads back; @name labels
 * the fault count it prints.
 */
static int fill_pud_mapped(const char *name)
{
	long before = minflt();
	long faults;

	for (size_t i = 0; i < len / PAGE; i++)
		map[i * PAGE] = pattern(i);
	faults = minflt() - before;
	printf("    # %s: %ld faults for %zu GiB\n", name, faults, len / PUD);
	CHECK(faults <= (long)(len / PUD) + 2);
	CHECK(check_data() == 0);
	return 0;
}

/* Fault in the whole device: one fault per GiB if it is PUD-mapped. */
static int test_pud_fault(void)
{
	return fill_pud_mapped("pud_fault");
}

/* The whole range read-only: change_huge_pud() on every leaf. */
static int test_pud_readonly(void)
{
	CHECK(mprotect(map, len, PROT_READ) == 0);
	CHECK(write_faults(map, 1));
	CHECK(write_faults(map + len - PAGE, 1));
	CHECK(write_faults(map + len / 2 + 12345, 1));
	CHECK(check_data() == 0);
	return 0;
}

/* Back to read-write: writes work again, data intact, still PUD-mapped. */
static int test_pud_readwrite(void)
{
	CHECK(mprotect(map, len, PROT_READ | PROT_WRITE) == 0);
	return fill_pud_mapped("pud_readwrite");
}

/* PROT_NONE: reads fault; read-write again keeps the data. */
static int test_pud_none(void)
{
	CHECK(mprotect(map, len, PROT_NONE) == 0);
	CHECK(read_faults(map));
	CHECK(read_faults(map + len - 1));
	CHECK(mprotect(map, len, PROT_READ | PROT_WRITE) == 0);
	CHECK(check_data() == 0);
	return 0;
}

/*
 * change_protection() on [start, end) through /sys/kernel/debug/mprotect/change:
 * returns what it returned, or LONG_MIN if the file cannot be used.
 */
static long change(char *start, char *end, unsigned long cp_flags)
{
	char cmd[64], res[32];
	long ret = LONG_MIN;
	int fd = open("/sys/kernel/debug/mprotect/change", O_RDWR);

	if (fd < 0)
		return LONG_MIN;
	snprintf(cmd, sizeof(cmd), "%lx %lx %lx", (unsigned long)start,
		 (unsigned long)end, cp_flags);
	if (write(fd, cmd, strlen(cmd)) == (ssize_t)strlen(cmd) &&
	    lseek(fd, 0, SEEK_SET) == 0 && read(fd, res, sizeof(res) - 1) > 0) {
		res[sizeof(res) - 1] = '\0';
		ret = strtol(res, NULL, 10);
	}
	close(fd);
	return ret;
}

/* change_protection() over whole PUD leaves: change_huge_pud() counts them. */
static int test_pud_count(void)
{
	CHECK(change(map, map + len, 0) == (long)(len / PAGE));
	CHECK(check_data() == 0);
	return 0;
}

/*
 * change_protection() over 2M inside a PUD leaf: the walker splits the PUD,
 * which for device-DAX unmaps it, finds nothing left to change, and the next
 * access maps the whole PUD again with one fault.
 */
static int test_pud_partial_split(void)
{
	long before;

	CHECK(change(map + PUD / 2, map + PUD / 2 + (2UL << 20), 0) == 0);
	before = minflt();
	CHECK(check_data() == 0);
	CHECK(minflt() - before >= 1 && minflt() - before <= 2);
	CHECK(!write_faults(map + PUD / 2, pattern(PUD / 2 / PAGE)));
	CHECK(check_data() == 0);
	return 0;
}

static const struct guest_test tests[] = {
	{ "pud_fault", test_pud_fault },
	{ "pud_readonly", test_pud_readonly },
	{ "pud_readwrite", test_pud_readwrite },
	{ "pud_none", test_pud_none },
	{ "pud_count", test_pud_count },
	{ "pud_partial_split", test_pud_partial_split },
};

int main(int argc, char **argv)
{
	const int n = sizeof(tests) / sizeof(tests[0]);
	const char *suite = argc > 1 ? argv[1] : "dax_user";
	const char *path = argc > 2 ? argv[2] : "/dev/dax0.0";
	char sizefile[128];
	unsigned long long size = 0;
	int failed, fd;
	FILE *f;

	snprintf(sizefile, sizeof(sizefile), "/sys/bus/dax/devices/%s/size",
		 strrchr(path, '/') + 1);
	f = fopen(sizefile, "r");
	if (f) {
		if (fscanf(f, "%llu", &size) != 1)
			size = 0;
		fclose(f);
	}
	len = size & ~(PUD - 1);
	errno = 0;
	fd = open(path, O_RDWR);
	map = len && fd >= 0 ? mmap(NULL, len, PROT_READ | PROT_WRITE,
				    MAP_SHARED, fd, 0) : MAP_FAILED;
	if (map == MAP_FAILED || (uintptr_t)map & (PUD - 1)) {
		const char *err = strerror(errno);

		printf("    KTAP version 1\n    # Subtest: %s\n    1..%d\n", suite, n);
		for (int i = 0; i < n; i++)
			printf("    # %s: size %llu, map %p (%s)\n    not ok %d %s\n",
			       path, size, (void *)map, err, i + 1,
			       tests[i].name);
		return 1;
	}
	failed = run_tests(suite, tests, n);
	munmap(map, len);
	close(fd);
	return failed ? 1 : 0;
}
