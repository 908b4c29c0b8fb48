/*
 * titus-launcher: start one program in an empty, read-only, network-less sandbox
 * as an unprivileged user. Runs as root, or installed setuid root.
 *
 * Processes (see docs/launcher.md):
 *   outer    the process our caller spawned. Checks everything while it can still
 *            refuse cheaply, unshares the mount namespace, opens every bind source,
 *            unshares the PID namespace, forks `init`, then only forwards signals
 *            to it and exits with the program's exact status (signal deaths are
 *            re-raised). It shares the mount namespace, so it ends up in the new
 *            root too, where it needs nothing.
 *   init     PID 1 of the new PID namespace, all ids root. Unshares the net, IPC
 *            and UTS namespaces, builds the new root, forks the program, then
 *            reaps and forwards signals until the program exits.
 *   program  PID 2. Drops groups/gid/uid, sets rlimits, closes fds, sets
 *            no_new_privs, installs the seccomp filter and execs.
 *
 * Exit statuses of the launcher itself: 2 usage, 3 refused, 4 sandbox setup failed,
 * 126 exec failed. Otherwise the program's own status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

enum { EXIT_USAGE = 2, EXIT_REFUSED = 3, EXIT_SETUP = 4, EXIT_EXEC = 126 };

#define ALLOW_FILE "/etc/titus/launcher.allow"
/* Where init mounts the new root's tmpfs inside its private mount namespace; only
 * the directory has to exist, whatever it contains stays untouched and unseen. */
#define STAGING "/tmp"
#define MAX_BINDS 64
#define MAX_ENV 64
#define MAX_KEEP 32

static const char *const devices[] = { "/dev/null", "/dev/random", "/dev/urandom" };
static const int forwarded_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

struct bind {
	const char *path; /* same path outside (source) and inside (destination) */
	int fd;           /* O_PATH fd of the source, opened before any namespace */
	int is_dir;
	int is_device;
};

struct options {
	const char *user, *group;
	struct bind binds[MAX_BINDS + 5]; /* + program, devices, /proc marker */
	int nbinds;
	int proc;
	char *env[MAX_ENV + 1];
	int nenv;
	int keep[MAX_KEEP];
	int nkeep;
	rlim_t nofile;
	char **argv;
	char program[PATH_MAX];
	uid_t uid;
	gid_t gid;
};

static void die(int status, const char *fmt, ...)
{
	va_list ap;
	fputs("titus-launcher: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(status);
}

#define die_errno(status, fmt, ...) die(status, fmt ": %s", __VA_ARGS__, strerror(errno))

static void usage(const char *problem)
{
	die(EXIT_USAGE, "%s\nusage: titus-launcher --profile conn|keyserver --user NAME --group NAME"
	    " [--ro-bind PATH]... [--proc] [--env NAME=VALUE]... [--keep-fd N]... [--nofile N]"
	    " -- PROGRAM ARGS...", problem);
}

static long parse_number(const char *text, long min, long max, const char *what)
{
	char *end;
	errno = 0;
	long value = strtol(text, &end, 10);
	if (errno || end == text || *end || value < min || value > max)
		die(EXIT_USAGE, "%s must be a number from %ld to %ld, got '%s'", what, min, max, text);
	return value;
}

/* An absolute path without empty, "." or ".." components, so that it names the
 * same place inside the new root as outside and creating it cannot wander off. */
static int is_plain_absolute_path(const char *path)
{
	if (path[0] != '/' || strlen(path) >= PATH_MAX - sizeof STAGING)
		return 0;
	for (const char *p = path; *p; ) {
		const char *name = p + 1, *next = strchrnul(name, '/');
		size_t len = (size_t)(next - name);
		if (len == 0 || (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
			return 0;
		p = next;
	}
	return 1;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	const char *profile = NULL;
	o->nofile = 64;
	int i;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!strcmp(arg, "--")) {
			i++;
			break;
		}
		if (!strcmp(arg, "--proc")) {
			o->proc = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage(strncmp(arg, "--", 2) ? "missing '--' before PROGRAM" : "option needs a value");
		const char *value = argv[++i];
		if (!strcmp(arg, "--profile")) {
			profile = value;
		} else if (!strcmp(arg, "--user")) {
			o->user = value;
		} else if (!strcmp(arg, "--group")) {
			o->group = value;
		} else if (!strcmp(arg, "--ro-bind")) {
			if (o->nbinds == MAX_BINDS)
				usage("too many --ro-bind");
			if (!is_plain_absolute_path(value))
				die(EXIT_USAGE, "--ro-bind needs an absolute path without '.', '..' or '//': '%s'", value);
			o->binds[o->nbinds++].path = value;
		} else if (!strcmp(arg, "--env")) {
			if (o->nenv == MAX_ENV)
				usage("too many --env");
			if (!strchr(value, '=') || value[0] == '=')
				die(EXIT_USAGE, "--env needs NAME=VALUE, got '%s'", value);
			o->env[o->nenv++] = (char *)value;
		} else if (!strcmp(arg, "--keep-fd")) {
			if (o->nkeep == MAX_KEEP)
				usage("too many --keep-fd");
			o->keep[o->nkeep++] = (int)parse_number(value, 3, INT_MAX, "--keep-fd");
		} else if (!strcmp(arg, "--nofile")) {
			o->nofile = (rlim_t)parse_number(value, 8, 1 << 20, "--nofile");
		} else {
			die(EXIT_USAGE, "unknown option '%s'", arg);
		}
	}
	if (!profile || (strcmp(profile, "conn") && strcmp(profile, "keyserver")))
		usage("--profile must be conn or keyserver");
	if (!o->user || !o->group)
		usage("--user and --group are required");
	if (i >= argc)
		usage("missing PROGRAM after '--'");
	o->argv = &argv[i];
	for (int k = 0; k < o->nkeep; k++)
		if (fcntl(o->keep[k], F_GETFD) == -1)
			die(EXIT_USAGE, "--keep-fd %d is not an open file descriptor", o->keep[k]);
}

/* An inherited directory fd would let the program look up paths outside its root. */
static void check_inherited_fds(const struct options *o)
{
	for (int k = -3; k < o->nkeep; k++) {
		int fd = k < 0 ? k + 3 : o->keep[k];
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
			die(EXIT_REFUSED, "refusing fd %d: it is a directory, outside the sandbox", fd);
	}
}

/* Only root may be able to change PATH: it and every parent directory are owned
 * by root and not writable by group or others (no exception for sticky dirs). */
static void check_root_controlled(const char *path, const char *what)
{
	char prefix[PATH_MAX];
	size_t len = strlen(path);
	for (size_t end = 1; end <= len; end++) {
		if (end > 1 && end < len && path[end] != '/')
			continue; /* prefixes end at a slash, and "/" itself is one */
		memcpy(prefix, path, end);
		prefix[end] = 0;
		struct stat st;
		if (lstat(prefix, &st))
			die_errno(EXIT_REFUSED, "refusing %s %s: cannot stat %s", what, path, prefix);
		int is_last = end == len;
		if (is_last ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode))
			die(EXIT_REFUSED, "refusing %s %s: %s is not a %s", what, path, prefix,
			    is_last ? "regular file" : "directory");
		if (st.st_uid != 0)
			die(EXIT_REFUSED, "refusing %s %s: %s is not owned by root", what, path, prefix);
		if (st.st_mode & (S_IWGRP | S_IWOTH))
			die(EXIT_REFUSED, "refusing %s %s: %s is writable by group or others", what, path, prefix);
	}
}

static void check_allow_file(const char *user)
{
	check_root_controlled(ALLOW_FILE, "allow file");
	FILE *f = fopen(ALLOW_FILE, "re");
	if (!f)
		die_errno(EXIT_REFUSED, "refusing: cannot read %s", ALLOW_FILE);
	char line[256];
	int listed = 0;
	while (!listed && fgets(line, sizeof line, f)) {
		line[strcspn(line, "#\r\n")] = 0;
		char *name = line + strspn(line, " \t");
		size_t len = strcspn(name, " \t");
		name[len] = 0;
		listed = len > 0 && !strcmp(name, user);
	}
	fclose(f);
	if (!listed)
		die(EXIT_REFUSED, "refusing user %s: not listed in %s", user, ALLOW_FILE);
}

static void resolve_ids(struct options *o, int setuid_mode)
{
	struct passwd *pw = getpwnam(o->user);
	if (!pw)
		die(EXIT_REFUSED, "refusing user %s: no such user", o->user);
	struct group *gr = getgrnam(o->group);
	if (!gr)
		die(EXIT_REFUSED, "refusing group %s: no such group", o->group);
	if (pw->pw_uid == 0)
		die(EXIT_REFUSED, "refusing user %s: uid 0", o->user);
	if (gr->gr_gid == 0)
		die(EXIT_REFUSED, "refusing group %s: gid 0", o->group);
	o->uid = pw->pw_uid;
	o->gid = gr->gr_gid;
	if (setuid_mode) {
		check_allow_file(o->user);
		if (o->gid != pw->pw_gid)
			die(EXIT_REFUSED, "refusing group %s: when setuid, only the primary group of %s is allowed",
			    o->group, o->user);
	}
}

/* Path lookups with the real uid's file system identity (and its groups): a setuid
 * launcher then opens and reveals only what its caller could reach itself. */
static void use_caller_fs_identity(int as_caller)
{
	setfsgid(as_caller ? getgid() : 0);
	setfsuid(as_caller ? getuid() : 0);
}

/* Opens a bind source, as the caller when setuid; the fd then pins exactly the
 * checked file, whatever happens to the path later. */
static void open_bind(struct bind *b, int as_caller)
{
	use_caller_fs_identity(as_caller);
	int fd = open(b->path, O_PATH | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		die_errno(EXIT_REFUSED, "refusing --ro-bind %s", b->path);
	b->is_dir = S_ISDIR(st.st_mode);
	b->is_device = S_ISCHR(st.st_mode);
	if (as_caller) {
		if (!b->is_dir && !S_ISREG(st.st_mode))
			die(EXIT_REFUSED, "refusing --ro-bind %s: not a regular file or directory", b->path);
		/* Reopening the pinned inode checks read (and, for ".", search) permission. */
		char self[64];
		snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
		int readable = b->is_dir ? openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
					 : open(self, O_RDONLY | O_NOCTTY | O_CLOEXEC);
		if (readable < 0)
			die_errno(EXIT_REFUSED, "refusing --ro-bind %s: not readable by uid %u", b->path, (unsigned)getuid());
		close(readable);
	}
	use_caller_fs_identity(0);
	b->fd = fd;
}

static int is_path_prefix(const char *a, const char *b)
{
	size_t len = strlen(a);
	return !strncmp(a, b, len) && (b[len] == '/' || b[len] == 0);
}

static void add_builtin_bind(struct options *o, const char *path)
{
	struct bind *b = &o->binds[o->nbinds++];
	b->path = path;
	open_bind(b, 0);
}

/* Every mount point is created inside our own tmpfs only if no destination lies
 * inside another one: otherwise creating it would write into a bound directory. */
static void check_no_nesting(const struct options *o)
{
	const char *paths[MAX_BINDS + 5];
	int n = 0;
	for (int i = 0; i < o->nbinds; i++)
		paths[n++] = o->binds[i].path;
	if (o->proc)
		paths[n++] = "/proc";
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (is_path_prefix(paths[i], paths[j]) || is_path_prefix(paths[j], paths[i]))
				die(EXIT_USAGE, "bind paths must not contain each other: %s and %s", paths[i], paths[j]);
}

static void prepare(struct options *o, int setuid_mode)
{
	check_inherited_fds(o);
	resolve_ids(o, setuid_mode);
	if (!strchr(o->argv[0], '/'))
		die(EXIT_USAGE, "PROGRAM must be a path, got '%s'", o->argv[0]);
	use_caller_fs_identity(setuid_mode);
	if (!realpath(o->argv[0], o->program))
		die_errno(EXIT_REFUSED, "refusing program %s", o->argv[0]);
	use_caller_fs_identity(0);
	check_root_controlled(o->program, "program");
	for (int i = 0; i < o->nbinds; i++)
		open_bind(&o->binds[i], setuid_mode);
	add_builtin_bind(o, o->program);
	for (size_t i = 0; i < sizeof devices / sizeof *devices; i++)
		add_builtin_bind(o, devices[i]);
	check_no_nesting(o);
	struct rlimit caller_files;
	if (setuid_mode && (getrlimit(RLIMIT_NOFILE, &caller_files) || o->nofile > caller_files.rlim_max))
		die(EXIT_REFUSED, "refusing --nofile %lu: above the caller's hard limit", (unsigned long)o->nofile);
}

static void close_all_except(const int *keep, int nkeep)
{
	int sorted[MAX_KEEP + 1];
	memcpy(sorted, keep, sizeof *keep * (size_t)nkeep);
	for (int i = 1; i < nkeep; i++)
		for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
			int t = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	unsigned low = 3;
	for (int i = 0; i < nkeep; i++) {
		unsigned fd = (unsigned)sorted[i];
		if (fd > low)
			close_range(low, fd - 1, 0);
		if (fd >= low)
			low = fd + 1;
	}
	close_range(low, ~0U, 0);
}

/* ---- the seccomp filter -------------------------------------------------- */

#define ARG0_LOW offsetof(struct seccomp_data, args[0]) /* little endian: low 32 bits */
#define RET_ERRNO(e) (SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))
#define NAMESPACE_CLONE_FLAGS (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | \
			       CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

static const int denied_syscalls[] = {
	/* other processes' memory and fds */
	SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_pidfd_getfd,
	SYS_process_madvise, SYS_kcmp,
	/* new processes (threads stay allowed, see clone below) */
	SYS_fork, SYS_vfork,
	/* mounts, roots and namespaces */
	SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_unshare, SYS_setns,
	SYS_open_tree, SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick,
	SYS_mount_setattr, SYS_open_by_handle_at, SYS_name_to_handle_at,
	/* identity */
	SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid, SYS_setresgid,
	SYS_setfsuid, SYS_setfsgid, SYS_setgroups, SYS_capset, SYS_personality,
	/* kernel attack surface a TLS proxy never needs */
	SYS_bpf, SYS_perf_event_open, SYS_userfaultfd, SYS_keyctl, SYS_add_key, SYS_request_key,
	SYS_modify_ldt, SYS_iopl, SYS_ioperm, SYS_syslog, SYS_quotactl, SYS_lookup_dcookie,
	SYS_uselib, SYS_vhangup, SYS_fanotify_init, SYS_sysfs, SYS_ustat,
	/* the machine */
	SYS_kexec_load, SYS_kexec_file_load, SYS_init_module, SYS_finit_module, SYS_delete_module,
	SYS_reboot, SYS_swapon, SYS_swapoff, SYS_acct, SYS_settimeofday, SYS_clock_settime,
	SYS_clock_adjtime, SYS_adjtimex, SYS_sethostname, SYS_setdomainname,
};

/* Denied with ENOSYS so that libc and runtimes fall back: clone3 hides its flags
 * in memory BPF cannot read (glibc then uses clone), io_uring would run opens and
 * sockets without passing through this filter. */
static const int unavailable_syscalls[] = {
	SYS_clone3, SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
};

struct filter_builder {
	struct sock_filter code[256];
	unsigned short len;
};

static void emit(struct filter_builder *f, struct sock_filter insn)
{
	if (f->len == sizeof f->code / sizeof *f->code)
		die(EXIT_SETUP, "seccomp filter too long");
	f->code[f->len++] = insn;
}

static void emit_return_if(struct filter_builder *f, unsigned nr, unsigned action)
{
	emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1));
	emit(f, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action));
}

static void install_seccomp(void)
{
	struct filter_builder f = { .len = 0 };
	emit(&f, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
	emit(&f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
	emit(&f, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
	emit(&f, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
	/* x32 syscall numbers reach the same kernel code under other numbers */
	emit(&f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1));
	emit(&f, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
	for (size_t i = 0; i < sizeof denied_syscalls / sizeof *denied_syscalls; i++)
		emit_return_if(&f, (unsigned)denied_syscalls[i], RET_ERRNO(EPERM));
	for (size_t i = 0; i < sizeof unavailable_syscalls / sizeof *unavailable_syscalls; i++)
		emit_return_if(&f, (unsigned)unavailable_syscalls[i], RET_ERRNO(ENOSYS));

	/* clone: only new threads, never a new process or namespace */
	emit(&f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 5));
	emit(&f, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LOW));
	emit(&f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 2));
	emit(&f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NAMESPACE_CLONE_FLAGS, 1, 0));
	emit(&f, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	emit(&f, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, RET_ERRNO(EPERM)));

	/* socket: only AF_UNIX (the IPC channel); the net namespace is empty anyway */
	emit(&f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 4));
	emit(&f, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LOW));
	emit(&f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1));
	emit(&f, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	emit(&f, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, RET_ERRNO(EPERM)));

	emit(&f, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));

	struct sock_fprog prog = { .len = f.len, .filter = f.code };
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		die_errno(EXIT_SETUP, "%s", "installing the seccomp filter");
}

/* ---- building the new root (in init) ------------------------------------- */

static void make_mount_point(const char *path, int is_dir)
{
	char target[PATH_MAX];
	snprintf(target, sizeof target, "%s%s", STAGING, path);
	for (char *slash = strchr(target + sizeof STAGING, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = 0;
		if (mkdir(target, 0755) && errno != EEXIST)
			die_errno(EXIT_SETUP, "creating %s", target);
		*slash = '/';
	}
	int fd = is_dir ? mkdir(target, 0755) : open(target, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0444);
	if (fd < 0)
		die_errno(EXIT_SETUP, "creating %s", target);
	if (!is_dir)
		close(fd);
}

static void bind_read_only(const struct bind *b)
{
	char source[64], target[PATH_MAX];
	make_mount_point(b->path, b->is_dir);
	snprintf(source, sizeof source, "/proc/self/fd/%d", b->fd);
	snprintf(target, sizeof target, "%s%s", STAGING, b->path);
	if (mount(source, target, NULL, MS_BIND, NULL))
		die_errno(EXIT_SETUP, "bind-mounting %s", b->path);
	unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID |
			      (b->is_device ? MS_NOEXEC : MS_NODEV);
	if (mount(NULL, target, NULL, flags, NULL))
		die_errno(EXIT_SETUP, "making %s read-only", b->path);
}

static void build_root(struct options *o)
{
	umask(022);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die_errno(EXIT_SETUP, "%s", "making mounts private");
	if (mount("tmpfs", STAGING, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k,nr_inodes=1024"))
		die_errno(EXIT_SETUP, "%s", "mounting the root tmpfs");
	for (int i = 0; i < o->nbinds; i++) {
		bind_read_only(&o->binds[i]);
		close(o->binds[i].fd);
	}
	if (o->proc) {
		make_mount_point("/proc", 1);
		/* hidepid=2: only processes of the program's own uid, so not init;
		 * subset=pid: no kernel-wide files (sys, net, kallsyms, cpuinfo...). */
		if (mount("proc", STAGING "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
			  "hidepid=2,subset=pid"))
			die_errno(EXIT_SETUP, "%s", "mounting /proc");
	}
	/* pivot_root(".", ".") stacks the old root on the new one; detaching it leaves
	 * nothing of the old file system reachable. */
	if (chdir(STAGING) || syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH) || chdir("/"))
		die_errno(EXIT_SETUP, "%s", "switching to the new root");
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL))
		die_errno(EXIT_SETUP, "%s", "making the root read-only");
}

/* ---- the three processes -------------------------------------------------- */

static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	for (size_t i = 0; i < sizeof forwarded_signals / sizeof *forwarded_signals; i++)
		sigaddset(set, forwarded_signals[i]);
	sigprocmask(SIG_BLOCK, set, NULL);
}

static void set_limit(int resource, rlim_t value, const char *name)
{
	struct rlimit limit = { value, value };
	if (setrlimit(resource, &limit))
		die_errno(EXIT_SETUP, "setting %s", name);
}

static void drop_identity(const struct options *o)
{
	if (setgroups(0, NULL) || setresgid(o->gid, o->gid, o->gid) || setresuid(o->uid, o->uid, o->uid))
		die_errno(EXIT_SETUP, "dropping to %s:%s", o->user, o->group);
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) || getresgid(&rg, &eg, &sg) ||
	    ru != o->uid || eu != o->uid || su != o->uid || rg != o->gid || eg != o->gid || sg != o->gid)
		die(EXIT_SETUP, "ids did not drop to %s:%s", o->user, o->group);
	if (setuid(0) == 0 || setgid(0) == 0)
		die(EXIT_SETUP, "%s", "could regain root after dropping privileges");
}

static void run_program(struct options *o)
{
	/* Limits first: raising NOFILE above the caller's hard limit needs root.
	 * RLIMIT_NPROC stays: it counts threads too, so 0 kills every runtime
	 * (measured); seccomp denies new processes instead. */
	set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE");
	set_limit(RLIMIT_NOFILE, o->nofile, "RLIMIT_NOFILE");
	drop_identity(o);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		die_errno(EXIT_SETUP, "%s", "setting no_new_privs");
	close_all_except(o->keep, o->nkeep);
	for (int i = 0; i < o->nkeep; i++)
		fcntl(o->keep[i], F_SETFD, 0);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	install_seccomp();
	execve(o->program, o->argv, o->env);
	die_errno(EXIT_EXEC, "executing %s", o->program);
}

/* Waits for `child`, handing it every forwarded signal; returns its wait status. */
static int forward_until_exit(pid_t child, const sigset_t *set)
{
	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(set, &info);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			if (pid == child)
				return status;
	}
}

static void run_init(struct options *o, int status_fd, const sigset_t *signals)
{
	/* All ids root, so that no sandboxed uid may signal us (even the caller's). */
	if (setresgid(0, 0, 0) || setresuid(0, 0, 0))
		die_errno(EXIT_SETUP, "%s", "becoming root");
	/* Credential changes reset the parent-death signal: set it after them, then
	 * make sure the outer process did not die before it took effect. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct pollfd outer = { .fd = status_fd, .events = POLLOUT };
	if (poll(&outer, 1, 0) < 0 || (outer.revents & POLLERR))
		_exit(EXIT_SETUP);
	/* A new session without a controlling terminal: no TIOCSTI into the caller's tty. */
	setsid();
	if (unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS))
		die_errno(EXIT_SETUP, "%s", "creating namespaces");
	build_root(o);
	pid_t program = fork();
	if (program < 0)
		die_errno(EXIT_SETUP, "%s", "forking the program");
	if (program == 0)
		run_program(o);
	close_all_except(&status_fd, 1);
	int status = forward_until_exit(program, signals);
	if (write(status_fd, &status, sizeof status) != sizeof status)
		_exit(EXIT_SETUP);
	_exit(0);
}

static void exit_like(int status)
{
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		struct rlimit no_core = { 0, 0 };
		setrlimit(RLIMIT_CORE, &no_core);
		signal(sig, SIG_DFL);
		sigset_t only;
		sigemptyset(&only);
		sigaddset(&only, sig);
		sigprocmask(SIG_UNBLOCK, &only, NULL);
		raise(sig);
		_exit(128 + sig);
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_SETUP);
}

int main(int argc, char **argv)
{
	/* A setuid program must not let its own opens land on fds 0-2. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", O_RDWR) != fd)
			_exit(EXIT_SETUP);
	signal(SIGCHLD, SIG_DFL); /* an inherited SIG_IGN would auto-reap our children */

	static struct options o;
	parse_args(argc, argv, &o);
	if (geteuid() != 0)
		die(EXIT_REFUSED, "%s", "must run as root or be installed setuid root");
	/* The mount namespace comes first: the kernel bind-mounts only from mounts of
	 * the caller's own namespace, and prepare() opens the bind sources. */
	if (unshare(CLONE_NEWNS))
		die_errno(EXIT_SETUP, "%s", "creating the mount namespace");
	prepare(&o, getuid() != 0);

	sigset_t signals;
	block_signals(&signals);
	int status_pipe[2];
	if (pipe2(status_pipe, O_CLOEXEC) || unshare(CLONE_NEWPID))
		die_errno(EXIT_SETUP, "%s", "creating the PID namespace");
	pid_t init = fork();
	if (init < 0)
		die_errno(EXIT_SETUP, "%s", "forking init");
	if (init == 0) {
		close(status_pipe[0]);
		run_init(&o, status_pipe[1], &signals);
	}
	close_all_except(&status_pipe[0], 1);
	int status = forward_until_exit(init, &signals);
	int program_status;
	if (read(status_pipe[0], &program_status, sizeof program_status) == sizeof program_status)
		status = program_status;
	exit_like(status);
}
