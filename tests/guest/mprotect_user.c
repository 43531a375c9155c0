// SPDX-License-Identifier: GPL-2.0
/*
 * User-space checks of mprotect(), fork+COW, THP and userfaultfd write
 * protection, run in the guest once per walker by tests/guest/init.
 *
 * Usage: mprotect_user SUITE_NAME
 *
 * Prints one KTAP subtest named SUITE_NAME with a test case per check.
 * The last check protects never-touched shmem pages, which makes the
 * walkers install uffd-wp markers in none PTEs.  Every
 * check verifies data and faults, not just return codes: a write to a page
 * made read-only must fault, the data must survive every change, and a
 * write-protected userfaultfd range must deliver a write-protect fault.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest_test.h"

static char pattern(size_t i)
{
	return (char)(0x5a ^ (i * 7));
}

static int fill_and_check(char *p, size_t pages, int fill)
{
	for (size_t i = 0; i < pages; i++) {
		if (fill)
			p[i * PAGE] = pattern(i);
		else if (p[i * PAGE] != pattern(i))
			return -1;
	}
	return 0;
}

/* 4K anonymous pages: RO faults on write and keeps data, RW again, NONE. */
static int test_anon_4k(void)
{
	const size_t pages = 256;
	char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	CHECK(madvise(p, pages * PAGE, MADV_NOHUGEPAGE) == 0);
	fill_and_check(p, pages, 1);
	CHECK(mprotect(p, pages * PAGE, PROT_READ) == 0);
	CHECK(fill_and_check(p, pages, 0) == 0);
	CHECK(write_faults(p + 17 * PAGE, 1));
	CHECK(write_faults(p + (pages - 1) * PAGE, 1));
	CHECK(mprotect(p, pages * PAGE, PROT_READ | PROT_WRITE) == 0);
	CHECK(!write_faults(p + 17 * PAGE, pattern(17)));
	CHECK(fill_and_check(p, pages, 0) == 0);
	CHECK(mprotect(p, pages * PAGE, PROT_NONE) == 0);
	CHECK(read_faults(p));
	CHECK(read_faults(p + 100 * PAGE));
	CHECK(mprotect(p + 8 * PAGE, 8 * PAGE, PROT_READ) == 0);
	CHECK(!read_faults(p + 8 * PAGE));
	CHECK(read_faults(p + 16 * PAGE));
	CHECK(mprotect(p, pages * PAGE, PROT_READ | PROT_WRITE) == 0);
	CHECK(fill_and_check(p, pages, 0) == 0);
	CHECK(munmap(p, pages * PAGE) == 0);
	return 0;
}

/*
 * fork + COW: after fork the pages are shared, so making them writable again
 * must not let one side's write reach the other.
 */
static int test_fork_cow(void)
{
	const size_t pages = 64;
	char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int status;
	pid_t pid;

	CHECK(p != MAP_FAILED);
	fill_and_check(p, pages, 1);
	CHECK(mprotect(p, pages * PAGE, PROT_READ) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (mprotect(p, pages * PAGE, PROT_READ | PROT_WRITE))
			_exit(2);
		for (size_t i = 0; i < pages; i++)
			p[i * PAGE] = (char)~pattern(i);
		for (size_t i = 0; i < pages; i++)
			if (p[i * PAGE] != (char)~pattern(i))
				_exit(3);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(fill_and_check(p, pages, 0) == 0);
	CHECK(mprotect(p, pages * PAGE, PROT_READ | PROT_WRITE) == 0);
	for (size_t i = 0; i < pages; i++)
		p[i * PAGE] = pattern(i + 1);
	for (size_t i = 0; i < pages; i++)
		CHECK(p[i * PAGE] == pattern(i + 1));
	CHECK(munmap(p, pages * PAGE) == 0);
	return 0;
}

static long anon_huge_kb(void *addr)
{
	char line[256];
	unsigned long start = 0, end = 0;
	int in = 0;
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = (unsigned long)addr >= start &&
			     (unsigned long)addr < end;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* A PMD THP: full mprotect, then a 4K mprotect inside it (split). */
static int test_thp(void)
{
	char *map = mmap(NULL, 2 * PMD, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;

	CHECK(map != MAP_FAILED);
	p = (char *)(((uintptr_t)map + PMD - 1) & ~(PMD - 1));
	CHECK(madvise(p, PMD, MADV_HUGEPAGE) == 0);
	fill_and_check(p, PMD / PAGE, 1);
	CHECK(anon_huge_kb(p) >= 2048);
	CHECK(mprotect(p, PMD, PROT_READ) == 0);
	CHECK(anon_huge_kb(p) >= 2048);
	CHECK(write_faults(p + 5 * PAGE, 1));
	CHECK(fill_and_check(p, PMD / PAGE, 0) == 0);
	CHECK(mprotect(p, PMD, PROT_READ | PROT_WRITE) == 0);
	CHECK(!write_faults(p + 5 * PAGE, pattern(5)));
	CHECK(mprotect(p + 9 * PAGE, PAGE, PROT_READ) == 0);
	CHECK(write_faults(p + 9 * PAGE, 1));
	CHECK(!write_faults(p + 10 * PAGE, pattern(10)));
	CHECK(!write_faults(p + 8 * PAGE, pattern(8)));
	CHECK(fill_and_check(p, PMD / PAGE, 0) == 0);
	CHECK(munmap(map, 2 * PMD) == 0);
	return 0;
}

struct uffd_writer {
	volatile char *addr;
	char value;
};

static void *writer(void *arg)
{
	struct uffd_writer *w = arg;

	*w->addr = w->value;
	return NULL;
}

/*
 * Registers [@p, @p + @len) with a new userfaultfd for write protection,
 * asking for @features, and write-protects it.  Returns the userfaultfd.
 */
static int uffd_wp_protect(char *p, size_t len, __u64 features, long *uffd)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	struct uffdio_register reg = { 0 };
	struct uffdio_writeprotect wp = { 0 };

	*uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	CHECK(*uffd >= 0);
	CHECK(ioctl(*uffd, UFFDIO_API, &api) == 0);
	reg.range.start = (uintptr_t)p;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	CHECK(ioctl(*uffd, UFFDIO_REGISTER, &reg) == 0);
	wp.range = reg.range;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	CHECK(ioctl(*uffd, UFFDIO_WRITEPROTECT, &wp) == 0);
	return 0;
}

/*
 * Starts a thread that writes @w->value to @w->addr, and checks that the
 * write raises a write-protect fault on @uffd for that page.  The thread
 * stays blocked until the caller resolves the fault.
 */
static int uffd_wp_expect_fault(long uffd, struct uffd_writer *w,
				pthread_t *thread)
{
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };
	struct uffd_msg msg;

	CHECK(pthread_create(thread, NULL, writer, w) == 0);
	CHECK(poll(&pfd, 1, 10000) == 1);
	CHECK(read(uffd, &msg, sizeof(msg)) == sizeof(msg));
	CHECK(msg.event == UFFD_EVENT_PAGEFAULT);
	CHECK(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP);
	CHECK((msg.arg.pagefault.address & ~(PAGE - 1)) == (uintptr_t)w->addr);
	return 0;
}

/* Lifts the write protection of [@p, @p + @len) on @uffd. */
static int uffd_wp_resolve(long uffd, char *p, size_t len)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = 0,
	};

	CHECK(ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) == 0);
	return 0;
}

/*
 * userfaultfd write protection: a write to a protected page must raise a
 * write-protect fault, and resolving it must let the write through.
 */
static int test_uffd_wp(void)
{
	const size_t pages = 16;
	struct uffd_writer w = { .addr = NULL, .value = 0x11 };
	pthread_t thread;
	char *p;
	long uffd;

	p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	fill_and_check(p, pages, 1);
	if (uffd_wp_protect(p, pages * PAGE, UFFD_FEATURE_PAGEFAULT_FLAG_WP, &uffd))
		return -1;

	w.addr = p + 3 * PAGE;
	if (uffd_wp_expect_fault(uffd, &w, &thread))
		return -1;
	/* The write has not happened yet. */
	CHECK(p[3 * PAGE] == pattern(3));

	if (uffd_wp_resolve(uffd, p + 3 * PAGE, PAGE))
		return -1;
	CHECK(pthread_join(thread, NULL) == 0);
	CHECK(p[3 * PAGE] == 0x11);
	/* The rest stays protected and intact. */
	p[3 * PAGE] = pattern(3);
	CHECK(fill_and_check(p, pages, 0) == 0);
	close(uffd);
	CHECK(munmap(p, pages * PAGE) == 0);
	return 0;
}

/*
 * userfaultfd write protection on shmem: protecting pages that were never
 * touched installs uffd-wp markers in their none PTEs (the walkers'
 * populate path), so a write to one must raise a write-protect fault too;
 * resolving drops the marker and lets the write through.
 */
static int test_uffd_wp_shmem(void)
{
	const size_t pages = 16;
	struct uffd_writer w = { .addr = NULL, .value = 0x22 };
	pthread_t thread;
	long uffd;
	char *p;
	int fd;

	fd = memfd_create("uffd_wp_shmem", 0);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, pages * PAGE) == 0);
	p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	/* Only the even pages are mapped; the odd PTEs stay none. */
	for (size_t i = 0; i < pages; i += 2)
		p[i * PAGE] = pattern(i);
	if (uffd_wp_protect(p, pages * PAGE, UFFD_FEATURE_PAGEFAULT_FLAG_WP |
			    UFFD_FEATURE_WP_HUGETLBFS_SHMEM, &uffd))
		return -1;

	/* A write to a page that was never mapped faults through the marker. */
	w.addr = p + 5 * PAGE;
	if (uffd_wp_expect_fault(uffd, &w, &thread))
		return -1;

	if (uffd_wp_resolve(uffd, p, pages * PAGE))
		return -1;
	CHECK(pthread_join(thread, NULL) == 0);
	CHECK(p[5 * PAGE] == 0x22);
	for (size_t i = 0; i < pages; i += 2)
		CHECK(p[i * PAGE] == pattern(i));
	close(uffd);
	CHECK(munmap(p, pages * PAGE) == 0);
	close(fd);
	return 0;
}

static const struct guest_test tests[] = {
	{ "anon_4k", test_anon_4k },
	{ "fork_cow", test_fork_cow },
	{ "thp_pmd", test_thp },
	{ "uffd_wp", test_uffd_wp },
	{ "uffd_wp_shmem_markers", test_uffd_wp_shmem },
};

int main(int argc, char **argv)
{
	const char *suite = argc > 1 ? argv[1] : "mprotect_user";

	return run_tests(suite, tests, sizeof(tests) / sizeof(tests[0])) ? 1 : 0;
}
