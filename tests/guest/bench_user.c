// SPDX-License-Identifier: GPL-2.0
/*
 * mprotect benchmarks, C walker against Rust walker in the same boot.
 *
 * Usage: bench_user REPS
 *
 * For every workload, REPS rounds; in each round the C and the Rust walker
 * (selected through /sys/kernel/debug/mprotect/walker, alternating which
 * goes first) run the same operation on the same memory, timed with
 * CLOCK_MONOTONIC.  Under QEMU's -icount shift=0,sleep=off a nanosecond of
 * guest time is one guest instruction.  Prints one line per measurement:
 *
 *   B <workload> <c|rust|floor> <ns>
 *
 * and "# ..." comments; scripts/bench.sh turns them into the report.
 *
 * On a kernel without the walker switch (make bench's baseline: the base
 * kernel with the series' C patches only, so only the C walker), each round
 * is one run of the C walker, reported as "base".
 *
 * Usage: bench_user -p REPS [DAX]   (make profile, scripts/profile.sh)
 *
 * On a kernel booted with profile=0, for every workload: REPS runs of the
 * operation under the C walker, then under the Rust walker, then of the
 * floor, each between a reset and a read of /proc/profile (the kernel's
 * tick-based PC sampler, which under -icount samples every so many guest
 * instructions).  Prints per run
 *
 *   S <workload> <c|rust|floor> <reps> <units per run> <unit> <ns>
 *   P <workload> <c|rust|floor> <bin> <samples>     (every bin hit)
 *
 * where bin is the offset from _stext in units of the sample step (the
 * "# profile: step" line), and the unit is a page changed (twice for a
 * toggle) or, where pages say little, a PMD, a PUD or a call.
 *
 * Usage: bench_user -t REPS [DAX [NAME,...]]   (make trace, scripts/trace.sh)
 *
 * For every workload, cut down to what single-stepping can cover (one PTE
 * table of the page workloads, two PMD leaves, 4 GiB of the sparse range,
 * the DAX PUD leaf; one 4-page toggle for the small calls): a warm-up under each walker, then REPS runs of the
 * operation under the C walker and REPS under the Rust walker.  Before
 * them it writes "trace:<workload>:<units>:<unit>" to the walker file,
 * which refuses it (EINVAL, ignored): the debugger of scripts/trace.sh
 * stops in mprotect_walker_write() and reads the marks, and the walker
 * names that follow them, to know what it single-steps, up to
 * "trace:stop".  Last, it writes "trace:end".  With NAMEs, only those workloads.
 *
 * The program runs on CPU 0 only, so that every boot takes the same paths
 * (NUMA hinting skips folios on the local node).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define PMD (2UL << 20)
#define PUD (1UL << 30)
#define MM_CP_TRY_CHANGE_WRITABLE 1UL
#define MM_CP_PROT_NUMA 2UL

static const char *knob = "/sys/kernel/debug/mprotect/walker";
static int reps = 11;
static int profiling;
static int tracing;
static const char *trace_only;	/* make trace's TRACE_ONLY: names, comma-separated */

static void die(const char *what)
{
	printf("# bench: %s failed\n", what);
	exit(1);
}

static void put(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		die(path);
	close(fd);
}

static uint64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* change_protection() or the floor loop through the test-only debugfs files. */
static long debugfs_range(const char *file, void *start, void *end,
			  unsigned long flags)
{
	char cmd[64], res[32] = "";
	long ret = -1;
	int fd = open(file, O_RDWR);

	if (fd < 0)
		die(file);
	snprintf(cmd, sizeof(cmd), "%lx %lx %lx", (unsigned long)start,
		 (unsigned long)end, flags);
	if (write(fd, cmd, strlen(cmd)) == (ssize_t)strlen(cmd) &&
	    lseek(fd, 0, SEEK_SET) == 0 && read(fd, res, sizeof(res) - 1) > 0)
		ret = strtol(res, NULL, 10);
	close(fd);
	return ret;
}

enum op { TOGGLE, NUMA, SMALL, UFFD_WP, UPGRADE, FLOOR, FLOOR1 };

struct workload {
	const char *name;
	char *addr;
	size_t len;
	int rw;		/* the protection toggled against PROT_READ, or NONE */
	int uffd;	/* UFFD_WP: the userfaultfd the range is registered with */
	/* For the profile's figures per unit: units per run, 0 for pages. */
	unsigned long units;
	const char *unit;
};

/* UFFDIO_WRITEPROTECT of the whole workload: @mode WP protects, 0 resolves. */
static void uffd_wp(struct workload *w, __u64 mode)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (unsigned long)w->addr, .len = w->len },
		.mode = mode,
	};

	if (ioctl(w->uffd, UFFDIO_WRITEPROTECT, &wp))
		die("UFFDIO_WRITEPROTECT");
}

/* One timed operation on @w with the current walker. */
static uint64_t run_op(struct workload *w, enum op op)
{
	uint64_t t0, t1;

	switch (op) {
	case TOGGLE:
		t0 = now();
		if (mprotect(w->addr, w->len, PROT_READ) ||
		    mprotect(w->addr, w->len, w->rw))
			die("mprotect");
		t1 = now();
		return t1 - t0;
	case NUMA:
		if (mprotect(w->addr, w->len, PROT_READ | PROT_WRITE))
			die("mprotect");
		t0 = now();
		if (debugfs_range("/sys/kernel/debug/mprotect/change", w->addr,
				  w->addr + w->len, MM_CP_PROT_NUMA) < 0)
			die("mprotect_change");
		t1 = now();
		return t1 - t0;
	case SMALL:
		t0 = now();
		for (int i = 0; i < 1000; i++)
			if (mprotect(w->addr, w->len, PROT_READ) ||
			    mprotect(w->addr, w->len, PROT_READ | PROT_WRITE))
				die("mprotect");
		t1 = now();
		return t1 - t0;
	case UPGRADE:
		/*
		 * A shared mapping that wants write notification: mprotect()
		 * itself asks for the write upgrade only where the backer
		 * has ->page_mkwrite (vma_wants_writenotify() refuses a
		 * vm_page_prot without the write bit otherwise), so the
		 * third change asks for it as such an mprotect() would.
		 */
		t0 = now();
		if (mprotect(w->addr, w->len, PROT_READ) ||
		    mprotect(w->addr, w->len, PROT_READ | PROT_WRITE) ||
		    debugfs_range("/sys/kernel/debug/mprotect/change", w->addr,
				  w->addr + w->len, MM_CP_TRY_CHANGE_WRITABLE) < 0)
			die("upgrade");
		t1 = now();
		return t1 - t0;
	case UFFD_WP:
		t0 = now();
		uffd_wp(w, UFFDIO_WRITEPROTECT_MODE_WP);
		uffd_wp(w, 0);
		t1 = now();
		return t1 - t0;
	case FLOOR1:
		/* One pass, as NUMA hinting is one change. */
		t0 = now();
		if (debugfs_range("/sys/kernel/debug/mprotect/floor", w->addr,
				  w->addr + w->len, 0) < 0)
			die("mprotect_floor");
		t1 = now();
		return t1 - t0;
	case FLOOR:
		t0 = now();
		/* Two passes, as a toggle is two changes. */
		if (debugfs_range("/sys/kernel/debug/mprotect/floor", w->addr,
				  w->addr + w->len, 0) < 0 ||
		    debugfs_range("/sys/kernel/debug/mprotect/floor", w->addr,
				  w->addr + w->len, 0) < 0)
			die("mprotect_floor");
		t1 = now();
		return t1 - t0;
	}
	return 0;
}

/* The pages that one run of @op changes (the floor: reads and writes). */
static unsigned long op_pages(struct workload *w, enum op op)
{
	unsigned long pages = w->len / PAGE;

	switch (op) {
	case NUMA:
	case FLOOR1:
		return pages;
	case SMALL:
		return 1000 * 2 * pages;
	case UPGRADE:
		return 3 * pages;
	default:
		return 2 * pages;
	}
}

/*
 * /proc/profile: one unsigned int of step, then one counter per bin.  Read
 * into one buffer, faulted in by the first read, so that the reads after a
 * timed run fault in no memory while the profile is on.
 */
static unsigned int *read_profile(size_t *bins)
{
	static char *buf;
	static size_t cap = 1 << 20;
	int fd = open("/proc/profile", O_RDONLY);
	size_t len = 0;
	ssize_t n;

	if (!buf)
		buf = malloc(cap);
	if (!buf || fd < 0)
		die("/proc/profile");
	while ((n = read(fd, buf + len, cap - len)) > 0) {
		len += n;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				die("realloc");
		}
	}
	if (n < 0 || len < 2 * sizeof(unsigned int))
		die("read /proc/profile");
	close(fd);
	*bins = len / sizeof(unsigned int) - 1;
	return (unsigned int *)buf;
}

/* REPS runs of @op by @who (c, rust or floor), sampled. */
static void profile_one(struct workload *w, enum op op, const char *who)
{
	unsigned int *prof;
	uint64_t t0, ns = 0;
	size_t bins;

	if (strcmp(who, "floor"))
		put(knob, who);
	run_op(w, op);	/* warm up */
	put("/proc/profile", "0\n");	/* any write but 4 bytes resets */
	t0 = now();
	for (int r = 0; r < reps; r++)
		run_op(w, op);
	ns = now() - t0;
	prof = read_profile(&bins);
	printf("S %s %s %d %lu %s %llu\n", w->name, who, reps,
	       w->units && op != FLOOR ? w->units : op_pages(w, op),
	       w->units && op != FLOOR ? w->unit : "page", (unsigned long long)ns);
	for (size_t i = 0; i < bins; i++)
		if (prof[i + 1])
			printf("P %s %s %zx %u\n", w->name, who, i, prof[i + 1]);
}

/* Tells the debugger of make trace what comes next; see the top. */
static void mark(const char *what)
{
	int fd = open(knob, O_WRONLY);

	if (fd < 0)
		die(knob);
	if (write(fd, what, strlen(what)) >= 0)
		die("the walker file took a trace mark");
	close(fd);
}

/* One run of @w (cut down) under each walker, single-stepped by make trace. */
static void trace_one(struct workload *w, enum op op)
{
	struct workload t = *w;
	unsigned long units;
	char buf[128];

	if (trace_only && *trace_only) {
		size_t n = strlen(w->name);
		const char *s = trace_only;

		while ((s = strstr(s, w->name)) &&
		       ((s != trace_only && s[-1] != ',') || (s[n] && s[n] != ',')))
			s++;
		if (!s)
			return;
	}
	if (op == SMALL)
		op = TOGGLE;	/* one call each way */
	else if (!strcmp(w->name, "sparse_1t_none"))
		t.len = 4 * PUD;
	else if (!w->unit)
		t.len = w->len < PMD ? w->len : PMD;
	else if (!strcmp(w->unit, "PMD"))
		t.len = 2 * PMD;
	if (!w->units)
		units = op_pages(&t, op);
	else if (!strcmp(w->unit, "populated page"))
		units = 2 * t.len / PUD;
	else if (!strcmp(w->unit, "PMD"))
		units = 2 * t.len / PMD;
	else
		units = 2;	/* PUDs of one leaf, or calls */
	units *= reps;
	for (int k = 0; k < 2; k++) {
		put(knob, k ? "rust" : "c");
		run_op(&t, op);	/* warm up */
	}
	snprintf(buf, sizeof(buf), "trace:%s:%lu:%s", w->name, units,
		 w->units ? w->unit : "page");
	mark(buf);
	for (int k = 0; k < 2; k++) {
		put(knob, k ? "rust" : "c");
		for (int r = 0; r < reps; r++)
			run_op(&t, op);
	}
	mark("trace:stop");
	printf("# trace: %s done\n", w->name);
}

static void bench(struct workload *w, enum op op, int floor)
{
	printf("# %s: %zu MiB at %p\n", w->name, w->len >> 20, (void *)w->addr);
	if (tracing) {
		trace_one(w, op);
		return;
	}
	if (profiling) {
		profile_one(w, op, "c");
		profile_one(w, op, "rust");
		if (floor)
			profile_one(w, op == NUMA ? FLOOR1 : FLOOR, "floor");
		return;
	}
	run_op(w, op);	/* warm up */
	if (access(knob, W_OK)) {
		for (int r = 0; r < reps; r++)
			printf("B %s base %llu\n", w->name,
			       (unsigned long long)run_op(w, op));
		return;
	}
	for (int r = 0; r < reps; r++) {
		for (int k = 0; k < 2; k++) {
			const char *walker = (r + k) % 2 ? "rust" : "c";

			put(knob, walker);
			printf("B %s %s %llu\n", w->name, walker,
			       (unsigned long long)run_op(w, op));
		}
		if (floor)
			printf("B %s floor %llu\n", w->name,
			       (unsigned long long)run_op(w, op == NUMA ? FLOOR1 : FLOOR));
	}
}

static char *anon(size_t len, size_t align, int advice)
{
	char *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	p = (char *)(((uintptr_t)p + align - 1) & ~(align - 1));
	if (advice >= 0 && madvise(p, len, advice))
		die("madvise");
	return p;
}

static void fault_in(char *p, size_t len, size_t step)
{
	for (size_t off = 0; off < len; off += step)
		p[off] = 1;
}

/*
 * @len of anonymous memory faulted in as 64K mTHP folios: only the 64K size
 * enabled while faulting in (MADV_NOHUGEPAGE would disable mTHP too), then
 * MADV_NOHUGEPAGE so that khugepaged leaves them alone.
 */
static char *anon_mthp_64k(size_t len)
{
	char *p;

	put("/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled", "never");
	put("/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled", "always");
	p = anon(len, PMD, -1);
	fault_in(p, len, PAGE);
	put("/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled", "never");
	put("/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled", "inherit");
	if (madvise(p, len, MADV_NOHUGEPAGE))
		die("madvise");
	return p;
}

/* @len of shmem (a memfd, 4K pages), mapped shared. */
static char *shmem(size_t len)
{
	int fd = memfd_create("bench", 0);
	char *p;

	if (fd < 0 || ftruncate(fd, len))
		die("memfd");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap shmem");
	close(fd);
	return p;
}

/* Soft-dirty tracking on: write faults needed again (clear_refs 4). */
static void clear_soft_dirty(void)
{
	put("/proc/self/clear_refs", "4");
}

/* A userfaultfd with @features, [@p, @p + @len) registered for uffd-wp. */
static int uffd_register(char *p, size_t len, __u64 features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)p, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) ||
	    (api.features & features) != features)
		die("userfaultfd");
	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER");
	return fd;
}

/*
 * UFFDIO_WRITEPROTECT protect and resolve over [@p, @p + @len), faulted in
 * and registered for uffd-wp with @features; unmapped afterwards.
 */
static void bench_uffd_wp(const char *name, char *p, size_t len, __u64 features)
{
	struct workload w;

	fault_in(p, len, PAGE);
	w = (struct workload){ .name = name, .addr = p, .len = len,
			       .rw = PROT_NONE,
			       .uffd = uffd_register(p, len, features) };
	bench(&w, UFFD_WP, 1);
	close(w.uffd);
	munmap(p, len);
}

int main(int argc, char **argv)
{
	const size_t gib = PUD;
	struct workload w;
	char *p;

	cpu_set_t cpu0;

	if (argc > 1 && !strcmp(argv[1], "-p")) {
		size_t bins;
		unsigned int *prof = read_profile(&bins);

		printf("# profile: step %u, %zu bins\n", prof[0], bins);
		profiling = 1;
		argv++;
		argc--;
	} else if (argc > 1 && !strcmp(argv[1], "-t")) {
		tracing = 1;
		argv++;
		argc--;
		if (argc > 3)
			trace_only = argv[3];
	}
	if (argc > 1)
		reps = atoi(argv[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	if (sched_setaffinity(0, sizeof(cpu0), &cpu0))
		die("sched_setaffinity");

	/* 1: 1 GiB of 4K anonymous pages. */
	p = anon(gib, PMD, MADV_NOHUGEPAGE);
	fault_in(p, gib, PAGE);
	w = (struct workload){ .name = "anon_4k_1g", .addr = p, .len = gib,
			       .rw = PROT_READ | PROT_WRITE, .uffd = -1 };
	bench(&w, TOGGLE, 1);
	/* 6: NUMA hinting over the same populated memory. */
	w.name = "numa_hint_1g";
	bench(&w, NUMA, 0);
	munmap(p, gib);

	/* 2a: PTE-mapped THPs: THPs, split at the PMD level by a VMA split. */
	p = anon(gib, PMD, MADV_HUGEPAGE);
	fault_in(p, gib, PAGE);
	for (size_t off = 0; off < gib; off += PMD)
		if (mprotect(p + off, PAGE, PROT_READ) ||
		    mprotect(p + off, PAGE, PROT_READ | PROT_WRITE))
			die("split");
	madvise(p, gib, MADV_NOHUGEPAGE);
	w = (struct workload){ .name = "pte_mapped_thp_1g", .addr = p, .len = gib,
			       .rw = PROT_READ | PROT_WRITE, .uffd = -1 };
	bench(&w, TOGGLE, 1);
	munmap(p, gib);

	/* 2b: 64K mTHP folios. */
	p = anon_mthp_64k(gib);
	w = (struct workload){ .name = "mthp_64k_1g", .addr = p, .len = gib,
			       .rw = PROT_READ | PROT_WRITE, .uffd = -1 };
	bench(&w, TOGGLE, 1);
	/* NUMA hinting over the same 64K folios. */
	w.name = "numa_hint_mthp_1g";
	bench(&w, NUMA, 1);
	munmap(p, gib);

	/*
	 * 64K mTHP folios shared with a child that then exits, and every
	 * other page written again: the written pages are reused, and so
	 * exclusive again (PageAnonExclusive()), the others not, so that
	 * the write upgrade runs in sub-batches of one page.
	 */
	p = anon_mthp_64k(gib);
	{
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (!pid)
			_exit(0);
		if (waitpid(pid, NULL, 0) != pid)
			die("waitpid");
	}
	fault_in(p, gib, 2 * PAGE);
	w = (struct workload){ .name = "anon_fork_rewrite_1g", .addr = p, .len = gib,
			       .rw = PROT_READ | PROT_WRITE, .uffd = -1 };
	bench(&w, TOGGLE, 1);
	munmap(p, gib);

	/*
	 * 1 GiB of shmem 4K pages, shared and writable, with soft-dirty
	 * tracking on, so that the VMA wants write notifications: RO, RW,
	 * then the write upgrade (UPGRADE), which follows the shared rule:
	 * dirty PTEs (written after clear_refs) are made writable, clean
	 * ones (only read) are not.
	 */
	p = shmem(gib);
	fault_in(p, gib, PAGE);
	clear_soft_dirty();
	fault_in(p, gib, PAGE);
	w = (struct workload){ .name = "shmem_dirty_1g", .addr = p, .len = gib,
			       .rw = PROT_READ | PROT_WRITE, .uffd = -1 };
	bench(&w, UPGRADE, 1);
	munmap(p, gib);
	p = shmem(gib);
	{
		volatile char sum = 0;

		for (size_t off = 0; off < gib; off += PAGE)
			sum += p[off];
	}
	clear_soft_dirty();
	w = (struct workload){ .name = "shmem_clean_1g", .addr = p, .len = gib,
			       .rw = PROT_READ | PROT_WRITE, .uffd = -1 };
	bench(&w, UPGRADE, 1);
	munmap(p, gib);

	/*
	 * uffd-wp protect and resolve (UFFDIO_WRITEPROTECT) over 1 GiB of
	 * anonymous 4K pages and of shmem, every page present, with
	 * WP_UNPOPULATED: pgtable_populate_needed() holds, so both walkers
	 * run their populate step at every level (there is no none PTE to
	 * mark).
	 */
	bench_uffd_wp("uffd_wp_anon_1g", anon(gib, PMD, MADV_NOHUGEPAGE), gib,
		      UFFD_FEATURE_WP_UNPOPULATED);
	bench_uffd_wp("uffd_wp_shmem_1g", shmem(gib), gib,
		      UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM);

	/* 3: PMD-mapped THPs. */
	p = anon(gib, PMD, MADV_HUGEPAGE);
	fault_in(p, gib, PMD);
	w = (struct workload){ .name = "pmd_thp_1g", .addr = p, .len = gib,
			       .rw = PROT_READ | PROT_WRITE, .uffd = -1,
			       .units = 2 * gib / PMD, .unit = "PMD" };
	bench(&w, TOGGLE, 0);
	munmap(p, gib);

	/* 4: 1 GiB device-DAX PUD leaves. */
	{
		int fd = open(argc > 2 ? argv[2] : "/dev/dax0.0", O_RDWR);

		p = fd < 0 ? MAP_FAILED : mmap(NULL, gib, PROT_READ | PROT_WRITE,
					       MAP_SHARED, fd, 0);
		if (p != MAP_FAILED) {
			fault_in(p, gib, PAGE);
			w = (struct workload){ .name = "dax_pud_1g", .addr = p,
					       .len = gib, .rw = PROT_READ | PROT_WRITE,
					       .uffd = -1, .units = 2, .unit = "PUD" };
			bench(&w, TOGGLE, 0);
			munmap(p, gib);
		} else {
			printf("# dax_pud_1g: no 1 GiB device-DAX mapping\n");
		}
	}

	/* 5: a 1 TiB reservation with one page per GiB, PROT_NONE <-> RW. */
	p = anon(1024 * gib, PUD, MADV_NOHUGEPAGE);
	fault_in(p, 1024 * gib, gib);
	w = (struct workload){ .name = "sparse_1t_none", .addr = p,
			       .len = 1024 * gib, .rw = PROT_NONE, .uffd = -1,
			       .units = 2 * 1024, .unit = "populated page" };
	bench(&w, TOGGLE, 0);
	munmap(p, 1024 * gib);

	/* 7: small calls: 4 pages, 1000 toggles per measurement. */
	p = anon(4 * PAGE, PAGE, MADV_NOHUGEPAGE);
	fault_in(p, 4 * PAGE, PAGE);
	w = (struct workload){ .name = "small_4p_x1000", .addr = p,
			       .len = 4 * PAGE, .rw = PROT_READ | PROT_WRITE, .uffd = -1,
			       .units = 2 * 1000, .unit = "call" };
	bench(&w, SMALL, 0);
	if (tracing)
		mark("trace:end");
	printf("# bench: done\n");
	return 0;
}
