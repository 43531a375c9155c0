// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded, timed stress of everything that runs change_protection() or
 * races with it, with every page's contents checked, run in the guest once
 * per walker by tests/guest/init.
 *
 * Usage: stress NAME SECONDS SEED
 *
 * Five regions: private anonymous 4K pages (userfaultfd write protection
 * with WP_UNPOPULATED), private anonymous THP (MADV_HUGEPAGE), the same
 * with userfaultfd write protection, shmem (MAP_SHARED | MAP_ANONYMOUS,
 * write-protected, so with PTE markers) and shmem THP.  Each page has one
 * owner, a writer thread, which alone writes it: a word at both ends of
 * the page encoding the region, the page index and a generation that only
 * the owner advances, and which alone drops it (MADV_DONTNEED of anonymous
 * memory, MADV_REMOVE of shmem), so that the owner knows what every page
 * of its own must hold: its last pattern, or zero.  Writers verify their
 * pages as they go, and every page is verified at the end.
 *
 * Meanwhile other threads write-protect and resolve random ranges
 * (UFFDIO_WRITEPROTECT, with a handler thread resolving the write-protect
 * faults), run NUMA hinting on random ranges through
 * /sys/kernel/debug/mprotect/change (MM_CP_PROT_NUMA; task_numa_work()
 * runs too when init has turned NUMA balancing on), page out (swap),
 * collapse (MADV_COLLAPSE; khugepaged runs too), split (the debugfs
 * split_huge_pages and an mprotect() of part of a THP, which splits the
 * VMA and the PMD), move pages between the two NUMA nodes (move_pages(),
 * migrate_pages()), fork (the child checks private pages against the state
 * of the moment of the fork) and make whole regions read-only now and then
 * (writers whose store faults retry it).
 *
 * Prints a KTAP subtest named NAME: one case per region (every check of its
 * pages passed) and one per kind of operation (it ran, and nothing it
 * returned was wrong), with "# stress:" lines giving the seed, the counts
 * of every operation and the kernel's own counters (/proc/vmstat).
 *
 * MPRS_STRESS_HOST=1 in the environment, for a run on a host kernel only:
 * what that kernel or host lacks (UFFD_FEATURE_WP_UNPOPULATED, the debugfs
 * files, a second NUMA node) is skipped, and said so.  In the guest
 * nothing is ever skipped: what is missing fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/mempolicy.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest_test.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/* MM_CP_PROT_NUMA in include/linux/mm.h of 7.3. */
#define MM_CP_PROT_NUMA 0x2UL

#define CHANGE_FILE "/sys/kernel/debug/mprotect/change"
#define SPLIT_FILE "/sys/kernel/debug/split_huge_pages"
#define WALKER_FILE "/sys/kernel/debug/mprotect/walker"

#define WRITERS_PER_REGION 2

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The regions. */
enum { R_ANON_WP, R_ANON_THP, R_ANON_THP_WP, R_SHMEM_WP, R_SHMEM_THP, NR_R };

struct page_state {
	uint32_t gen;		/* the last generation written */
	uint8_t zero;		/* dropped (or never written): reads zero */
	uint8_t last_op;	/* for the failure message */
};

enum { LAST_NONE, LAST_WRITE, LAST_DONTNEED, LAST_REMOVE };
static const char *const last_op_name[] = {
	"never written", "write", "MADV_DONTNEED", "MADV_REMOVE",
};

struct region {
	const char *name;
	size_t size;
	int shared;		/* shmem */
	int thp;		/* MADV_HUGEPAGE */
	int uffd;		/* registered for userfaultfd write protection */
	char *base;
	size_t pages;
	struct page_state *st;
	/*
	 * Held exclusively around mprotect() of the region or of part of it
	 * (which splits its VMA for a moment), and shared by the debugfs
	 * change, whose range must lie in one VMA.  Writers do not take it:
	 * their stores fault while the region is read-only.
	 */
	pthread_rwlock_t vma_lock;
};

static struct region regions[NR_R] = {
	[R_ANON_WP] = { "anon_4k_uffd_wp", 4UL << 20, 0, 0, 1 },
	[R_ANON_THP] = { "anon_thp", 16UL << 20, 0, 1, 0 },
	[R_ANON_THP_WP] = { "anon_thp_uffd_wp", 8UL << 20, 0, 1, 1 },
	[R_SHMEM_WP] = { "shmem_uffd_wp", 8UL << 20, 1, 1, 1 },
	[R_SHMEM_THP] = { "shmem_thp", 16UL << 20, 1, 1, 0 },
};

/* Operations, counted. */
enum {
	OP_WRITE, OP_VERIFY, OP_WRITE_SEGV, OP_DONTNEED, OP_REMOVE,
	OP_PAGEOUT, OP_COLLAPSE, OP_COLLAPSE_REFUSED, OP_SPLIT_DEBUGFS,
	OP_SPLIT_MPROTECT, OP_MOVE_PAGES, OP_PAGES_MOVED, OP_MIGRATE_PAGES,
	OP_FORK, OP_UFFD_WP, OP_UFFD_RESOLVE, OP_WP_FAULT, OP_NUMA_CHANGE,
	OP_NUMA_CHANGED, OP_MPROTECT_RO, OP_RO_PROBE, NR_OPS
};

static const char *const op_name[NR_OPS] = {
	"write", "verify", "write_segv", "dontneed", "remove",
	"pageout", "collapse", "collapse_refused", "split_debugfs",
	"split_mprotect", "move_pages", "pages_moved", "migrate_pages",
	"fork", "uffd_wp", "uffd_resolve", "wp_fault", "numa_change",
	"numa_changed_pages", "mprotect_ro", "ro_probe",
};

static unsigned long ops[NR_OPS];

/*
 * What can fail: the pages of each region, then each kind of operation.
 * Each is one KTAP case.
 */
enum {
	C_UFFD = NR_R, C_NUMA, C_MADVISE, C_SPLIT, C_MIGRATE, C_FORK,
	C_MPROTECT, NR_C
};

static unsigned long failures[NR_C];
static char first_failure[NR_C][200];
static const char *skipped[NR_C];
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

/* Pattern checks passed, per region. */
static unsigned long checks[NR_R];

static volatile int stop;
/* The handler stops last: a writer may wait for it until it has joined. */
static volatile int handler_stop;
static int host_mode;
static int uffd = -1;
static uint64_t seed;
static int have_node1;
static int have_change, have_split;

/*
 * Taken shared by a writer for one write or drop of a page and its state,
 * exclusively by fork(): the child sees every private page as its state
 * says.  Writers are many; prefer the one who forks.
 */
static pthread_rwlock_t fork_lock;

static void count(int op, unsigned long n)
{
	__atomic_fetch_add(&ops[op], n, __ATOMIC_RELAXED);
}

static void fail(int c, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_lock);
	if (!failures[c]++) {
		va_start(ap, fmt);
		vsnprintf(first_failure[c], sizeof(first_failure[c]), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&fail_lock);
}

/* xorshift64*, each thread its own stream of the seed. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t stream(unsigned int n)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (n + 1);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z ? z : 1;
}

static void nap(uint64_t *s, unsigned int max_us)
{
	usleep(rnd(s) % max_us + 1);
}

/* The first word of page @i of region @r at generation @gen. */
static uint64_t pattern(int r, size_t i, uint32_t gen)
{
	return (uint64_t)(0xa0 | r) << 56 | (uint64_t)(i & 0xffffff) << 32 | gen;
}

static volatile uint64_t *word0(struct region *r, size_t i)
{
	return (volatile uint64_t *)(r->base + i * PAGE);
}

static volatile uint64_t *word1(struct region *r, size_t i)
{
	return (volatile uint64_t *)(r->base + (i + 1) * PAGE - 8);
}

/*
 * A store that may fault: the region is read-only for a moment now and
 * then.  SA_NODEFER leaves SIGSEGV unblocked, so that the jump out of the
 * handler needs no signal mask restored.
 */
static __thread sigjmp_buf segv_jmp;
static __thread volatile sig_atomic_t segv_armed;

static void stress_segv(int sig)
{
	static const char msg[] = "stress: unexpected SIGSEGV\n";

	(void)sig;
	if (segv_armed)
		siglongjmp(segv_jmp, 1);
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(98);
	_exit(98);
}

static int store_faults(volatile uint64_t *p, uint64_t v)
{
	segv_armed = 1;
	if (sigsetjmp(segv_jmp, 0)) {
		segv_armed = 0;
		return 1;
	}
	*p = v;
	segv_armed = 0;
	return 0;
}

/* Checks page @i of region @ri against its state; the owner's call. */
static void verify_page(int ri, size_t i)
{
	struct region *r = &regions[ri];
	struct page_state *st = &r->st[i];
	uint64_t want0 = st->zero ? 0 : pattern(ri, i, st->gen);
	uint64_t want1 = st->zero ? 0 : ~want0;
	uint64_t got0 = *word0(r, i), got1 = *word1(r, i);

	if (got0 == want0 && got1 == want1) {
		__atomic_fetch_add(&checks[ri], 1, __ATOMIC_RELAXED);
		count(OP_VERIFY, 1);
		return;
	}
	fail(ri, "page %zu (%p): want %016" PRIx64 "/%016" PRIx64
	     ", got %016" PRIx64 "/%016" PRIx64 ", last %s, gen %u",
	     i, (void *)word0(r, i), want0, want1, got0, got1,
	     last_op_name[st->last_op], st->gen);
}

static void write_page(int ri, size_t i)
{
	struct region *r = &regions[ri];
	struct page_state *st = &r->st[i];
	uint32_t gen = st->gen + 1;
	uint64_t v = pattern(ri, i, gen);

	pthread_rwlock_rdlock(&fork_lock);
	if (store_faults(word0(r, i), v)) {
		/* Read-only now: nothing was written; another time. */
		count(OP_WRITE_SEGV, 1);
		pthread_rwlock_unlock(&fork_lock);
		return;
	}
	/* Half written: finish it once the region is writable again. */
	while (store_faults(word1(r, i), ~v)) {
		count(OP_WRITE_SEGV, 1);
		sched_yield();
	}
	st->gen = gen;
	st->zero = 0;
	st->last_op = LAST_WRITE;
	pthread_rwlock_unlock(&fork_lock);
	count(OP_WRITE, 1);
}

/*
 * Drops pages [@i, @i + @n) of region @ri: anonymous pages read zero
 * afterwards; shmem pages keep their data through MADV_DONTNEED (only the
 * mapping goes) and read zero after MADV_REMOVE (the hole punched).
 */
static void drop_pages(int ri, size_t i, size_t n, int remove)
{
	struct region *r = &regions[ri];
	int advice = remove ? MADV_REMOVE : MADV_DONTNEED;

	pthread_rwlock_rdlock(&fork_lock);
	if (madvise(r->base + i * PAGE, n * PAGE, advice)) {
		fail(C_MADVISE, "madvise(%s %zu+%zu, %s): %s", r->name, i, n,
		     remove ? "MADV_REMOVE" : "MADV_DONTNEED", strerror(errno));
	} else if (!r->shared || remove) {
		for (size_t j = i; j < i + n; j++) {
			r->st[j].zero = 1;
			r->st[j].last_op = remove ? LAST_REMOVE : LAST_DONTNEED;
		}
	}
	pthread_rwlock_unlock(&fork_lock);
	count(remove ? OP_REMOVE : OP_DONTNEED, 1);
}

struct writer {
	int ri;
	size_t lo, hi;		/* the pages it owns */
	unsigned int n;
	pthread_t thread;
};

static void *writer_fn(void *arg)
{
	struct writer *w = arg;
	struct region *r = &regions[w->ri];
	uint64_t s = stream(w->n);
	size_t span = w->hi - w->lo;

	/*
	 * Writers never sleep; the other threads mostly do, and must not
	 * wait long for a CPU when they wake (2 vCPUs under TCG).
	 */
	setpriority(PRIO_PROCESS, syscall(SYS_gettid), 5);
	while (!stop) {
		size_t i = w->lo + rnd(&s) % span;
		unsigned int k = rnd(&s) % 1000;

		if (k < 600) {
			write_page(w->ri, i);
		} else if (k < 960) {
			size_t n = rnd(&s) % 8 + 1;

			for (size_t j = i; j < i + n && j < w->hi; j++)
				verify_page(w->ri, j);
		} else if (k < 995 || !r->thp) {
			size_t n = rnd(&s) % 16 + 1;

			if (i + n > w->hi)
				n = w->hi - i;
			drop_pages(w->ri, i, n, r->shared && (k & 1));
		} else {
			/* A whole PMD of its own. */
			size_t pmd_pages = PMD / PAGE;
			size_t first = (w->lo + pmd_pages - 1) / pmd_pages;
			size_t last = w->hi / pmd_pages;

			if (last > first) {
				i = (first + rnd(&s) % (last - first)) *
				    pmd_pages;
				drop_pages(w->ri, i, pmd_pages,
					   r->shared && (k & 1));
			}
		}
	}
	return NULL;
}

/* A random page-aligned range of region @r: [*start, *start + *len). */
static void random_range(struct region *r, uint64_t *s, char **start,
			 size_t *len)
{
	size_t pmd_pages = PMD / PAGE;
	size_t first, n;

	switch (rnd(s) % 4) {
	case 0:		/* whole PMDs */
		first = rnd(s) % (r->pages / pmd_pages);
		n = rnd(s) % (r->pages / pmd_pages - first) + 1;
		first *= pmd_pages;
		n *= pmd_pages;
		break;
	case 1:		/* the whole region */
		first = 0;
		n = r->pages;
		break;
	default:	/* anywhere */
		first = rnd(s) % r->pages;
		n = rnd(s) % 1024 + 1;
		if (first + n > r->pages)
			n = r->pages - first;
		break;
	}
	*start = r->base + first * PAGE;
	*len = n * PAGE;
}

/*
 * A region for the operations that can race with the walkers' retry after
 * pte_offset_map_lock() fails: shmem THP, whose page tables collapse into a
 * PMD (retract_page_tables()) without the mmap lock, half the time.
 */
static int random_region(uint64_t *s)
{
	return rnd(s) % 2 ? R_SHMEM_THP : (int)(rnd(s) % NR_R);
}

static int random_uffd_region(uint64_t *s)
{
	static const int wp[] = { R_ANON_WP, R_ANON_THP_WP, R_SHMEM_WP };

	return wp[rnd(s) % 3];
}

/* Resolves every write-protect fault, one page at a time. */
static void *uffd_handler_fn(void *arg)
{
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };
	struct uffd_msg msg;

	(void)arg;
	while (!handler_stop) {
		struct uffdio_writeprotect wp = { 0 };
		int ret = poll(&pfd, 1, 100);

		if (ret <= 0)
			continue;
		if (read(uffd, &msg, sizeof(msg)) != sizeof(msg)) {
			if (errno != EAGAIN)
				fail(C_UFFD, "read(uffd): %s", strerror(errno));
			continue;
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT ||
		    !(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
			fail(C_UFFD, "unexpected uffd event %u flags %llx",
			     msg.event,
			     (unsigned long long)msg.arg.pagefault.flags);
			continue;
		}
		count(OP_WP_FAULT, 1);
		wp.range.start = msg.arg.pagefault.address & ~(PAGE - 1);
		wp.range.len = PAGE;
		wp.mode = 0;
		while (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp)) {
			if (errno != EAGAIN) {
				fail(C_UFFD, "UFFDIO_WRITEPROTECT resolve %llx: %s",
				     (unsigned long long)wp.range.start,
				     strerror(errno));
				break;
			}
			sched_yield();
		}
	}
	return NULL;
}

/* Write-protects and resolves random ranges. */
static void *uffd_protect_fn(void *arg)
{
	uint64_t s = stream(100);

	(void)arg;
	while (!stop) {
		struct region *r = &regions[random_uffd_region(&s)];
		struct uffdio_writeprotect wp = { 0 };
		int protect = rnd(&s) % 5 < 3;
		char *start;
		size_t len;

		random_range(r, &s, &start, &len);
		wp.range.start = (uintptr_t)start;
		wp.range.len = len;
		wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
		while (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp)) {
			if (errno != EAGAIN) {
				fail(C_UFFD, "UFFDIO_WRITEPROTECT %s %p+%zx: %s",
				     r->name, start, len, strerror(errno));
				break;
			}
			sched_yield();
		}
		count(protect ? OP_UFFD_WP : OP_UFFD_RESOLVE, 1);
		nap(&s, 2000);
	}
	return NULL;
}

/* NUMA hinting on random ranges, through the debugfs change file. */
static void *numa_change_fn(void *arg)
{
	uint64_t s = stream(101);
	char buf[64];

	(void)arg;
	while (!stop && have_change) {
		struct region *r = &regions[random_region(&s)];
		char *start;
		size_t len;
		ssize_t n;
		long ret;
		int fd;

		random_range(r, &s, &start, &len);
		pthread_rwlock_rdlock(&r->vma_lock);
		fd = open(CHANGE_FILE, O_RDWR);
		if (fd < 0) {
			fail(C_NUMA, "open %s: %s", CHANGE_FILE,
			     strerror(errno));
			pthread_rwlock_unlock(&r->vma_lock);
			break;
		}
		n = snprintf(buf, sizeof(buf), "%lx %lx %lx", (uintptr_t)start,
			     (uintptr_t)start + len, MM_CP_PROT_NUMA);
		if (write(fd, buf, n) != n) {
			fail(C_NUMA, "write '%s' to %s: %s", buf, CHANGE_FILE,
			     strerror(errno));
		} else {
			n = pread(fd, buf, sizeof(buf) - 1, 0);
			buf[n > 0 ? n : 0] = '\0';
			ret = strtol(buf, NULL, 10);
			if (n <= 0 || ret < 0)
				fail(C_NUMA, "%s on %s %p+%zx returned '%s'",
				     CHANGE_FILE, r->name, start, len, buf);
			else
				count(OP_NUMA_CHANGED, ret);
		}
		close(fd);
		pthread_rwlock_unlock(&r->vma_lock);
		count(OP_NUMA_CHANGE, 1);
		nap(&s, 3000);
	}
	return NULL;
}

static int split_debugfs(struct region *r, uint64_t *s)
{
	char buf[96];
	char *start;
	size_t len;
	int fd, n, ret = 0;

	random_range(r, s, &start, &len);
	/* Down to 4K pages, or to 64K mTHPs (order 4) now and then. */
	if (rnd(s) % 4)
		n = snprintf(buf, sizeof(buf), "%d,0x%lx,0x%lx", getpid(),
			     (uintptr_t)start, (uintptr_t)start + len);
	else
		n = snprintf(buf, sizeof(buf), "%d,0x%lx,0x%lx,4", getpid(),
			     (uintptr_t)start, (uintptr_t)start + len);
	fd = open(SPLIT_FILE, O_WRONLY);
	if (fd < 0 || write(fd, buf, n) != n) {
		fail(C_SPLIT, "'%s' to %s: %s", buf, SPLIT_FILE,
		     strerror(errno));
		ret = -1;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * While pages [@first, @first + @n) of @r are read-only, a store to them must
 * fault: probes up to 64 of them with a store of the word's own value (so
 * that a store that wrongly goes through changes nothing).  A walker that
 * left a PTE writable is caught here, before any data is lost.
 */
static void check_read_only(struct region *r, size_t first, size_t n,
			    uint64_t *s, int c)
{
	for (size_t k = 0; k < 64 && k < n; k++) {
		size_t i = first + (n <= 64 ? k : rnd(s) % n);
		volatile uint64_t *p = word0(r, i);

		if (!store_faults(p, *p))
			fail(c, "%s page %zu: a store went through while it was read-only",
			     r->name, i);
		count(OP_RO_PROBE, 1);
	}
}

/*
 * mprotect() of part of a PMD: splits the VMA and the PMD mapping, and back:
 * the VMA merges again.
 */
static void split_mprotect(struct region *r, uint64_t *s)
{
	size_t pmd_pages = PMD / PAGE;
	size_t first = rnd(s) % (r->pages / pmd_pages) * pmd_pages +
		       rnd(s) % (pmd_pages - 1) + 1;
	size_t n = rnd(s) % 64 + 1;
	char *p;

	if (first + n > r->pages)
		n = r->pages - first;
	p = r->base + first * PAGE;
	pthread_rwlock_wrlock(&r->vma_lock);
	if (mprotect(p, n * PAGE, PROT_READ))
		fail(C_SPLIT, "mprotect(%s %zu+%zu, PROT_READ): %s", r->name,
		     first, n, strerror(errno));
	else
		check_read_only(r, first, n, s, C_SPLIT);
	nap(s, 1000);
	if (mprotect(p, n * PAGE, PROT_READ | PROT_WRITE))
		fail(C_SPLIT, "mprotect(%s %zu+%zu, PROT_READ|PROT_WRITE): %s",
		     r->name, first, n, strerror(errno));
	pthread_rwlock_unlock(&r->vma_lock);
	count(OP_SPLIT_MPROTECT, 1);
}

/*
 * Page-out, collapse and split, in turn (so that even a short run does
 * each), on random ranges.
 */
static void *madvise_fn(void *arg)
{
	uint64_t s = stream(102);

	(void)arg;
	for (unsigned int k = 0; !stop; k = (k + 1) % 4) {
		struct region *r = &regions[random_region(&s)];
		char *start;
		size_t len;

		if (k == 0) {
			random_range(r, &s, &start, &len);
			if (len > 64 * PAGE)
				len = 64 * PAGE;
			if (madvise(start, len, MADV_PAGEOUT))
				fail(C_MADVISE, "MADV_PAGEOUT %s %p+%zx: %s",
				     r->name, start, len, strerror(errno));
			count(OP_PAGEOUT, 1);
		} else if (k == 1) {
			size_t pmd = rnd(&s) % (r->size / PMD);

			/*
			 * Refusals are normal: uffd-wp armed ranges, pages
			 * swapped out or pinned, no huge page free.
			 */
			if (madvise(r->base + pmd * PMD, PMD, MADV_COLLAPSE))
				count(OP_COLLAPSE_REFUSED, 1);
			else
				count(OP_COLLAPSE, 1);
		} else if (k == 2) {
			if (!have_split)
				continue;
			if (split_debugfs(r, &s) == 0)
				count(OP_SPLIT_DEBUGFS, 1);
		} else {
			split_mprotect(r, &s);
		}
		nap(&s, 3000);
	}
	return NULL;
}

/* Pages between the two nodes. */
static void *migrate_fn(void *arg)
{
	uint64_t s = stream(103);

	(void)arg;
	for (unsigned int k = 0; !stop && have_node1; k = (k + 1) % 25) {
		if (k == 5) {
			unsigned long from = 1UL << (rnd(&s) & 1);
			unsigned long to = from ^ 3;
			long ret = syscall(SYS_migrate_pages, 0, 8 *
					   sizeof(unsigned long), &from, &to);

			if (ret < 0)
				fail(C_MIGRATE, "migrate_pages(%lx -> %lx): %s",
				     from, to, strerror(errno));
			count(OP_MIGRATE_PAGES, 1);
		} else {
			struct region *r = &regions[rnd(&s) % NR_R];
			void *pages[16];
			int nodes[16], status[16];
			long ret;

			for (int j = 0; j < 16; j++) {
				pages[j] = r->base + rnd(&s) % r->pages * PAGE;
				nodes[j] = rnd(&s) & 1;
			}
			ret = syscall(SYS_move_pages, 0, 16, pages, nodes,
				      status, MPOL_MF_MOVE);
			if (ret < 0)
				fail(C_MIGRATE, "move_pages(%s): %s", r->name,
				     strerror(errno));
			for (int j = 0; ret >= 0 && j < 16; j++)
				if (status[j] == nodes[j])
					count(OP_PAGES_MOVED, 1);
			count(OP_MOVE_PAGES, 1);
		}
		nap(&s, 2000);
	}
	return NULL;
}

/*
 * The child of a fork: private pages must hold what their state said at
 * the fork (the writers were held off by fork_lock); shmem pages, which
 * the parent goes on writing, must be zero or one of their own patterns.
 * Only reads and _exit(): the other threads' locks are not its own.
 */
static void fork_child(uint64_t s)
{
	for (int ri = 0; ri < NR_R; ri++) {
		struct region *r = &regions[ri];

		for (int j = 0; j < 64; j++) {
			size_t i = rnd(&s) % r->pages;
			struct page_state *st = &r->st[i];
			uint64_t got0 = *word0(r, i), got1 = *word1(r, i);
			uint64_t want0 = st->zero ? 0 : pattern(ri, i, st->gen);

			if (!r->shared) {
				if (got0 != want0 ||
				    got1 != (st->zero ? 0 : ~want0))
					_exit(10 + ri);
			} else if (got0 &&
				   (got0 & ~0xffffffffULL) !=
				   (pattern(ri, i, 0) & ~0xffffffffULL)) {
				_exit(10 + ri);
			}
		}
	}
	_exit(0);
}

static void *fork_fn(void *arg)
{
	uint64_t s = stream(104);

	(void)arg;
	while (!stop) {
		int status;
		pid_t pid;

		pthread_rwlock_wrlock(&fork_lock);
		pid = fork();
		if (pid == 0)
			fork_child(rnd(&s));
		pthread_rwlock_unlock(&fork_lock);
		if (pid < 0) {
			fail(C_FORK, "fork: %s", strerror(errno));
		} else if (waitpid(pid, &status, 0) != pid) {
			fail(C_FORK, "waitpid: %s", strerror(errno));
		} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

			fail(C_FORK, "child %s (status %#x): %s",
			     code >= 10 && code < 10 + NR_R ?
			     "found a wrong page" : "failed", status,
			     code >= 10 && code < 10 + NR_R ?
			     regions[code - 10].name : "");
		}
		rnd(&s);
		count(OP_FORK, 1);
		nap(&s, 50000);
	}
	return NULL;
}

/* Whole regions read-only for a moment. */
static void *mprotect_fn(void *arg)
{
	uint64_t s = stream(105);

	(void)arg;
	while (!stop) {
		struct region *r = &regions[rnd(&s) % NR_R];

		pthread_rwlock_wrlock(&r->vma_lock);
		if (mprotect(r->base, r->size, PROT_READ))
			fail(C_MPROTECT, "mprotect(%s, PROT_READ): %s",
			     r->name, strerror(errno));
		else
			check_read_only(r, 0, r->pages, &s, C_MPROTECT);
		nap(&s, 2000);
		if (mprotect(r->base, r->size, PROT_READ | PROT_WRITE))
			fail(C_MPROTECT, "mprotect(%s, PROT_READ|PROT_WRITE): %s",
			     r->name, strerror(errno));
		pthread_rwlock_unlock(&r->vma_lock);
		count(OP_MPROTECT_RO, 1);
		nap(&s, 5000);
	}
	return NULL;
}

/*
 * Maps region @r at a PMD-aligned address, with unmapped gaps on both
 * sides so that it never merges with a neighbour; shmem at offset 0 of its
 * object, so that its huge pages can be mapped by PMDs.
 */
static int map_region(struct region *r)
{
	size_t slack = PMD;
	char *res = mmap(NULL, r->size + 2 * slack, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *p;

	if (res == MAP_FAILED)
		return -1;
	p = (char *)(((uintptr_t)res + slack + PMD - 1) & ~(PMD - 1));
	r->base = mmap(p, r->size, PROT_READ | PROT_WRITE, MAP_FIXED |
		       (r->shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS,
		       -1, 0);
	if (r->base != p)
		return -1;
	if (p > res)
		munmap(res, p - res);
	munmap(p + r->size, res + r->size + 2 * slack - (p + r->size));
	r->pages = r->size / PAGE;
	r->st = calloc(r->pages, sizeof(*r->st));
	if (!r->st)
		return -1;
	for (size_t i = 0; i < r->pages; i++)
		r->st[i].zero = 1;
	if (madvise(r->base, r->size, r->thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		return -1;
	pthread_rwlock_init(&r->vma_lock, NULL);
	return 0;
}

/*
 * One userfaultfd for the three write-protected regions: WP_UNPOPULATED so
 * that never-touched anonymous pages are protected too (markers), and
 * WP_HUGETLBFS_SHMEM for shmem.
 */
static int setup_uffd(void)
{
	__u64 want = UFFD_FEATURE_PAGEFAULT_FLAG_WP |
		     UFFD_FEATURE_WP_HUGETLBFS_SHMEM |
		     UFFD_FEATURE_WP_UNPOPULATED;
	struct uffdio_api api = { .api = UFFD_API, .features = want };

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0) {
		snprintf(why, sizeof(why), "userfaultfd: %s", strerror(errno));
		return -1;
	}
	if (ioctl(uffd, UFFDIO_API, &api) && host_mode) {
		/* A host kernel without WP_UNPOPULATED (before 6.4). */
		printf("# stress: host: no UFFD_FEATURE_WP_UNPOPULATED\n");
		close(uffd);
		uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		api.api = UFFD_API;
		api.features = want & ~UFFD_FEATURE_WP_UNPOPULATED;
		if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
			snprintf(why, sizeof(why), "UFFDIO_API: %s",
				 strerror(errno));
			return -1;
		}
	} else if (api.api != UFFD_API || (api.features & want) != want) {
		snprintf(why, sizeof(why), "UFFDIO_API: %s, features %llx",
			 strerror(errno), (unsigned long long)api.features);
		return -1;
	}
	for (int ri = 0; ri < NR_R; ri++) {
		struct region *r = &regions[ri];
		struct uffdio_register reg = { 0 };

		if (!r->uffd)
			continue;
		reg.range.start = (uintptr_t)r->base;
		reg.range.len = r->size;
		reg.mode = UFFDIO_REGISTER_MODE_WP;
		if (ioctl(uffd, UFFDIO_REGISTER, &reg) ||
		    !(reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT))) {
			snprintf(why, sizeof(why), "UFFDIO_REGISTER %s: %s",
				 r->name, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* /proc/vmstat counters worth a look. */
static const char *const vmstat_names[] = {
	"numa_pte_updates", "numa_huge_pte_updates", "numa_hint_faults",
	"numa_pages_migrated", "pgmigrate_success", "pgmigrate_fail",
	"pswpout", "pswpin", "thp_fault_alloc", "thp_collapse_alloc",
	"thp_file_alloc", "thp_file_mapped", "thp_split_page",
	"thp_split_pmd", "thp_deferred_split_page",
};

#define NR_VMSTAT ARRAY_SIZE(vmstat_names)

static void read_vmstat(unsigned long *v)
{
	char name[64];
	unsigned long val;
	FILE *f = fopen("/proc/vmstat", "r");

	memset(v, 0, NR_VMSTAT * sizeof(*v));
	if (!f)
		return;
	while (fscanf(f, "%63s %lu", name, &val) == 2)
		for (size_t i = 0; i < NR_VMSTAT; i++)
			if (!strcmp(name, vmstat_names[i]))
				v[i] = val;
	fclose(f);
}

static int file_contains(const char *path, const char *what)
{
	char buf[256] = "";
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return !!strstr(buf, what);
}

/* The results, one case each. */
static const char *suite;
static int case_no;

static int result(int c, int ran)
{
	if (!failures[c] && ran)
		return 0;
	if (failures[c])
		snprintf(why, sizeof(why), "%lu failure(s), the first: %s",
			 failures[c], first_failure[c]);
	else
		snprintf(why, sizeof(why), "did not run");
	return -1;
}

static int region_case(void)
{
	int ri = case_no++;

	return result(ri, checks[ri] > 0);
}

static int uffd_case(void)
{
	return result(C_UFFD, ops[OP_UFFD_WP] > 0);
}

/* /proc/vmstat at the start and at the end of the run. */
static unsigned long vm0[NR_VMSTAT], vm1[NR_VMSTAT];

/*
 * The debugfs change with MM_CP_PROT_NUMA ran, and so did task_numa_work()
 * (its change_prot_numa() alone counts numa_pte_updates).
 */
static int numa_case(void)
{
	/* vm*[0]: numa_pte_updates, the first of vmstat_names. */
	return result(C_NUMA, ops[OP_NUMA_CHANGE] > 0 && vm1[0] > vm0[0]);
}

static int madvise_case(void)
{
	return result(C_MADVISE, ops[OP_PAGEOUT] > 0 && ops[OP_DONTNEED] > 0 &&
		      ops[OP_REMOVE] > 0 &&
		      ops[OP_COLLAPSE] + ops[OP_COLLAPSE_REFUSED] > 0);
}

static int split_case(void)
{
	return result(C_SPLIT, ops[OP_SPLIT_MPROTECT] > 0 &&
		      (ops[OP_SPLIT_DEBUGFS] > 0 || skipped[C_SPLIT]));
}

static int migrate_case(void)
{
	return result(C_MIGRATE, ops[OP_MOVE_PAGES] > 0);
}

static int fork_case(void)
{
	return result(C_FORK, ops[OP_FORK] > 0);
}

static int mprotect_case(void)
{
	return result(C_MPROTECT, ops[OP_MPROTECT_RO] > 0 && ops[OP_RO_PROBE] > 0);
}

/* run_tests() cannot skip: a skipped case says so and passes (host only). */
#define SKIPPABLE(c, fn)						\
	static int fn##_or_skip(void)					\
	{								\
		if (skipped[c]) {					\
			printf("    # SKIP %s (host)\n", skipped[c]);	\
			return 0;					\
		}							\
		return fn();						\
	}
SKIPPABLE(C_NUMA, numa_case)
SKIPPABLE(C_MIGRATE, migrate_case)

static void print_counts(double secs)
{
	char line[1024];
	int n = 0;

	for (int i = 0; i < NR_OPS; i++)
		n += snprintf(line + n, sizeof(line) - n, " %s=%lu",
			      op_name[i], ops[i]);
	printf("# stress: %s ops%s\n", suite, line);
	n = 0;
	for (int ri = 0; ri < NR_R; ri++)
		n += snprintf(line + n, sizeof(line) - n, " %s=%lu",
			      regions[ri].name, checks[ri]);
	printf("# stress: %s checks%s\n", suite, line);
	n = 0;
	for (int c = 0; c < NR_C; c++)
		n += (int)failures[c];
	printf("# stress: %s seed=%" PRIu64 " seconds=%.1f failures=%d\n",
	       suite, seed, secs, n);
}

int main(int argc, char **argv)
{
	static const struct guest_test tests[] = {
		{ "anon_4k_uffd_wp", region_case },
		{ "anon_thp", region_case },
		{ "anon_thp_uffd_wp", region_case },
		{ "shmem_uffd_wp", region_case },
		{ "shmem_thp", region_case },
		{ "uffd_wp", uffd_case },
		{ "numa_hinting", numa_case_or_skip },
		{ "madvise", madvise_case },
		{ "thp_split", split_case },
		{ "migration", migrate_case_or_skip },
		{ "fork", fork_case },
		{ "mprotect", mprotect_case },
	};
	static void *(*const op_threads[])(void *) = {
		uffd_protect_fn, numa_change_fn, madvise_fn, migrate_fn,
		fork_fn, mprotect_fn,
	};
	enum { NR_OP_THREADS = ARRAY_SIZE(op_threads) };
	struct writer writers[NR_R * WRITERS_PER_REGION];
	pthread_t op_thread[NR_OP_THREADS], handler;
	struct sigaction sa = { .sa_handler = stress_segv,
				.sa_flags = SA_NODEFER };
	pthread_rwlockattr_t attr;
	struct timespec t0, t1;
	unsigned int nw = 0;
	char walker[16] = "?";
	char line[1024];
	double secs;
	int seconds, fd, n;

	if (argc != 4) {
		fprintf(stderr, "usage: %s NAME SECONDS SEED\n", argv[0]);
		return 2;
	}
	suite = argv[1];
	seconds = atoi(argv[2]);
	seed = strtoull(argv[3], NULL, 0);
	host_mode = !!getenv("MPRS_STRESS_HOST");
	setvbuf(stdout, NULL, _IONBF, 0);
	fd = open(WALKER_FILE, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, walker, sizeof(walker) - 1);
		walker[n > 0 ? n - 1 : 0] = '\0';
		close(fd);
	}
	printf("# stress: %s seed=%" PRIu64 " seconds=%d walker=%s%s\n",
	       suite, seed, seconds, walker, host_mode ? " (host mode)" : "");

	have_change = access(CHANGE_FILE, W_OK) == 0;
	have_split = access(SPLIT_FILE, W_OK) == 0;
	have_node1 = access("/sys/devices/system/node/node1", F_OK) == 0;
	if (!have_change) {
		if (host_mode)
			skipped[C_NUMA] = "no " CHANGE_FILE;
		else
			fail(C_NUMA, "no %s", CHANGE_FILE);
	}
	if (!have_split) {
		if (host_mode)
			skipped[C_SPLIT] = "no " SPLIT_FILE;
		else
			fail(C_SPLIT, "no %s", SPLIT_FILE);
	}
	if (!have_node1) {
		if (host_mode)
			skipped[C_MIGRATE] = "one NUMA node";
		else
			fail(C_MIGRATE, "no NUMA node 1");
	}
	for (int c = 0; c < NR_C; c++)
		if (skipped[c])
			printf("# stress: host: skipping %s\n", skipped[c]);
	if (!file_contains("/sys/kernel/mm/transparent_hugepage/shmem_enabled",
			   "[advise]") &&
	    !file_contains("/sys/kernel/mm/transparent_hugepage/shmem_enabled",
			   "[always]"))
		printf("# stress: shmem THP off (shmem_enabled is not advise or always)\n");

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fork_lock, &attr);
	sigaction(SIGSEGV, &sa, NULL);
	for (int ri = 0; ri < NR_R; ri++) {
		if (map_region(&regions[ri])) {
			printf("# stress: mapping %s: %s\n", regions[ri].name,
			       strerror(errno));
			return 1;
		}
	}
	why[0] = '\0';
	if (setup_uffd()) {
		printf("# stress: %s\n", why);
		return 1;
	}

	read_vmstat(vm0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (pthread_create(&handler, NULL, uffd_handler_fn, NULL))
		return 1;
	for (int ri = 0; ri < NR_R; ri++) {
		size_t per = regions[ri].pages / WRITERS_PER_REGION;

		for (int j = 0; j < WRITERS_PER_REGION; j++, nw++) {
			writers[nw].ri = ri;
			writers[nw].lo = j * per;
			writers[nw].hi = (j + 1) * per;
			writers[nw].n = nw;
			if (pthread_create(&writers[nw].thread, NULL,
					   writer_fn, &writers[nw]))
				return 1;
		}
	}
	for (int i = 0; i < NR_OP_THREADS; i++)
		if (pthread_create(&op_thread[i], NULL, op_threads[i], NULL))
			return 1;

	sleep(seconds);
	stop = 1;
	for (unsigned int i = 0; i < nw; i++)
		pthread_join(writers[i].thread, NULL);
	for (int i = 0; i < NR_OP_THREADS; i++)
		pthread_join(op_thread[i], NULL);
	handler_stop = 1;
	pthread_join(handler, NULL);

	/* Every page, once more. */
	for (int ri = 0; ri < NR_R; ri++)
		for (size_t i = 0; i < regions[ri].pages; i++)
			verify_page(ri, i);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	read_vmstat(vm1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

	print_counts(secs);
	n = 0;
	for (size_t i = 0; i < NR_VMSTAT; i++)
		n += snprintf(line + n, sizeof(line) - n, " %s=%lu",
			      vmstat_names[i], vm1[i] - vm0[i]);
	printf("# stress: %s vmstat%s\n", suite, line);

	case_no = 0;
	return run_tests(suite, tests, ARRAY_SIZE(tests)) ? 1 : 0;
}
