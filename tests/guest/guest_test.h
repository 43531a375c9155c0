/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the guest test programs: catching the SIGSEGV of an access that
 * must fault, a CHECK() that records where a test failed, and the KTAP
 * subtest runner.
 */
#ifndef GUEST_TEST_H
#define GUEST_TEST_H

#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#define PAGE 4096UL
#define PMD (2UL << 20)
#define PUD (1UL << 30)

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t expect_fault;
static char why[256];

static void on_segv(int sig)
{
	(void)sig;
	if (expect_fault)
		siglongjmp(fault_jmp, 1);
	_exit(99);
}

/* Returns 1 if writing @v to @p faults, 0 if the write went through. */
static inline int write_faults(volatile char *p, char v)
{
	expect_fault = 1;
	if (sigsetjmp(fault_jmp, 1)) {
		expect_fault = 0;
		return 1;
	}
	*p = v;
	expect_fault = 0;
	return 0;
}

/* Returns 1 if reading @p faults. */
static inline int read_faults(volatile char *p)
{
	expect_fault = 1;
	if (sigsetjmp(fault_jmp, 1)) {
		expect_fault = 0;
		return 1;
	}
	(void)*p;
	expect_fault = 0;
	return 0;
}

/* Fails the current test, saying where, unless @cond holds. */
#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			snprintf(why, sizeof(why), "%s:%d: %s",		\
				 __func__, __LINE__, #cond);		\
			return -1;					\
		}							\
	} while (0)

struct guest_test {
	const char *name;
	int (*fn)(void);
};

/* Runs @n tests as the KTAP subtest @suite; returns the number that failed. */
static inline int run_tests(const char *suite, const struct guest_test *tests,
			    int n)
{
	int failed = 0;

	signal(SIGSEGV, on_segv);
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("    KTAP version 1\n    # Subtest: %s\n    1..%d\n", suite, n);
	for (int i = 0; i < n; i++) {
		why[0] = '\0';
		if (tests[i].fn() == 0) {
			printf("    ok %d %s\n", i + 1, tests[i].name);
		} else {
			printf("    # %s\n    not ok %d %s\n", why, i + 1,
			       tests[i].name);
			failed++;
		}
	}
	return failed;
}

#endif /* GUEST_TEST_H */
