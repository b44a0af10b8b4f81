/*
 * xpu-container-runtime launcher, compiled: the same decisions as tools/runtime_launcher.sh, made without a
 * shell, so that the commands an engine runs per container (create, start, delete, state, kill) cost one
 * exec of a static program before the low-level runtime, and a create whose spec asks for no device costs no
 * grep process. Built by tools/build.ts where a C compiler can link a static program; the shell launcher is
 * the form everywhere else, and the tests run one table through both (tests/runtime/launcher_diff_test.ts).
 *
 * It acts only on the facts the full runtime derived (runtime/launcher_facts.ts), while everything they were
 * derived from is unchanged, and hands anything else to the full runtime, which writes the facts afresh. The
 * facts file is the shell's: single-quoted assignments, read here by a reader that accepts only what
 * runtime/launcher_facts.ts writes (anything else is stale facts). The flag tables, the cache folder, the
 * programs' folders and Deno's flags are generated from the TypeScript (tools/runtime_launcher.ts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

// BEGIN GENERATED tables
static const char *const GLOBAL_VALUE_FLAGS[] = {"log", "log-format", "root", "criu", "rootless", NULL};
static const char *const GLOBAL_BOOL_FLAGS[] = {"systemd-cgroup", NULL};
static const char *const BUNDLE_FLAGS[] = {"bundle", "b", NULL};
static const char *const COMMAND_VALUE_FLAGS[] = {"console-socket", "pidfd-socket", "pid-file", "preserve-fds", NULL};
static const char *const COMMAND_BOOL_FLAGS[] = {"no-pivot", "no-new-keyring", NULL};
static const char *const RUN_ONLY_FLAGS[] = {"detach", "d", "keep", "no-subreaper", NULL};
#define CACHE_FOLDER "/run/xpu-container-runtime"
static const char *const LIBDIRS[] = {"libexec/xpu-container-toolkit", "lib/xpu-container-toolkit", NULL};
#define PROGRAM "xpu-container-runtime"
#define CACHE_DIR "cache"
#define MAX_LINKS 40
static const char *const DENO_ARGS[] = {"run", "-A", "--quiet", "--no-config", "--no-lock", "--no-remote", "--no-npm", "--v8-flags=--no-lazy,--jitless,--no-enable-lazy-source-positions,--min-semi-space-size=8", NULL};
// END GENERATED tables

/* Facts or a spec larger than this are not read here: the full runtime takes the call. */
#define MAX_READ (64L << 20)

static char **args;     /* the arguments after argv[0] */
static int nargs;
static char self[PATH_MAX]; /* this launcher's path as exec'd, absolute (the shell's $0) */
static const char *name;    /* its last component, for messages */

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    fprintf(stderr, "%s: out of memory\n", name);
    exit(127);
  }
  return p;
}

static char *cat3(const char *a, const char *b, const char *c) {
  size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
  char *s = xmalloc(la + lb + lc + 1);
  memcpy(s, a, la);
  memcpy(s + la, b, lb);
  memcpy(s + la + lb, c, lc + 1);
  return s;
}

static const char *env(const char *k) {
  const char *v = getenv(k);
  return v ? v : "";
}

/* test(1)'s -f, -e, -O, -r, -x, -nt and -ef as dash reads them (stat follows links; access as the euid). */
static int is_file(const char *p) {
  struct stat s;
  return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}
static int exists(const char *p) {
  struct stat s;
  return stat(p, &s) == 0;
}
static int owned(const char *p) {
  struct stat s;
  return stat(p, &s) == 0 && s.st_uid == geteuid();
}
static int may(const char *p, int mode) {
  return faccessat(AT_FDCWD, p, mode, AT_EACCESS) == 0;
}
static int newer(const char *a, const char *b) {
  struct stat x, y;
  if (stat(a, &x) != 0 || stat(b, &y) != 0) return 0;
  return x.st_mtim.tv_sec > y.st_mtim.tv_sec ||
         (x.st_mtim.tv_sec == y.st_mtim.tv_sec && x.st_mtim.tv_nsec > y.st_mtim.tv_nsec);
}
static int same(const char *a, const char *b) {
  struct stat x, y;
  return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/*
 * A regular file's bytes, NUL-terminated after *len; NULL when it cannot be read, is not a regular file (a FIFO
 * is not waited on) or is over MAX_READ.
 */
static char *slurp(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return NULL;
  struct stat s;
  if (fstat(fd, &s) != 0 || !S_ISREG(s.st_mode) || s.st_size > MAX_READ) {
    close(fd);
    return NULL;
  }
  size_t cap = (size_t)s.st_size + 1, n = 0;
  char *b = xmalloc(cap + 1);
  for (;;) {
    if (n == cap) {
      /* Grew while read: more than stat said. */
      close(fd);
      free(b);
      return NULL;
    }
    ssize_t r = read(fd, b + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      close(fd);
      free(b);
      return NULL;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  b[n] = 0;
  *len = n;
  return b;
}

/* The full runtime: Deno with the bundle (or the compiled program) of the programs' folder of this tree. */
static void full(const char *facts) {
  struct rlimit rl;
  char nofile[32] = "";
  /* Deno raises the soft RLIMIT_NOFILE at start; the caller's value goes on so that runc gets it back. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur == RLIM_INFINITY) snprintf(nofile, sizeof nofile, "unlimited");
    else snprintf(nofile, sizeof nofile, "%llu", (unsigned long long)rl.rlim_cur);
  }
  setenv("XPU_LAUNCHER_NOFILE", nofile, 1);
  setenv("XPU_LAUNCHER_SELF", self, 1);
  if (facts) setenv("XPU_LAUNCHER_FACTS", facts, 1);

  /* Follow links to the launcher file; its folder's parent is the tree, taken lexically when the kernel agrees
     (Deno's code cache is keyed by the paths the programs are started by), else resolved. */
  char s[PATH_MAX];
  snprintf(s, sizeof s, "%s", self);
  for (int i = 0;; i++) {
    struct stat st;
    if (lstat(s, &st) != 0 || !S_ISLNK(st.st_mode)) break;
    char l[PATH_MAX];
    ssize_t n = readlink(s, l, sizeof l - 1);
    if (n <= 0 || i >= MAX_LINKS) {
      fprintf(stderr, "%s: cannot follow the link %s to the toolkit's launcher (unreadable, or a loop)\n", name, s);
      exit(127);
    }
    l[n] = 0;
    if (l[0] == '/') {
      snprintf(s, sizeof s, "%s", l);
    } else {
      char *slash = strrchr(s, '/');
      char t[PATH_MAX];
      if (snprintf(t, sizeof t, "%.*s/%s", (int)(slash - s), s, l) >= (int)sizeof t) {
        fprintf(stderr, "%s: the link %s leads to too long a path\n", name, s);
        exit(127);
      }
      memcpy(s, t, sizeof s);
    }
  }
  char dir[PATH_MAX], tree[PATH_MAX];
  char *slash = strrchr(s, '/');
  snprintf(dir, sizeof dir, "%.*s", (int)(slash - s), s);
  slash = strrchr(dir, '/');
  snprintf(tree, sizeof tree, "%.*s", slash ? (int)(slash - dir) : 0, dir);
  char *lexical = cat3(tree, "/", "");
  char *up = cat3(dir, "/..", "");
  if (strstr(lexical, "/./") || strstr(lexical, "/../") || !same(tree[0] ? tree : "/", up)) {
    if (!realpath(up, tree)) {
      fprintf(stderr, "%s: cannot resolve %s: %s\n", name, up, strerror(errno));
      exit(127);
    }
    if (strcmp(tree, "/") == 0) tree[0] = 0;
  }
  const char *x = NULL;
  for (int i = 0; LIBDIRS[i]; i++) {
    char *c = cat3(tree, "/", LIBDIRS[i]);
    char *p = cat3(c, "/", PROGRAM);
    if (exists(p)) {
      x = c;
      break;
    }
  }
  if (!x) {
    fprintf(stderr, "%s: the toolkit's programs are missing: no %s/%s/%s beside this launcher (%s)\n", name, tree,
            LIBDIRS[0], PROGRAM, s);
    exit(127);
  }
  char *deno_dir = cat3(x, "/", CACHE_DIR);
  setenv("DENO_DIR", deno_dir, 1);
  char *program = cat3(x, "/", PROGRAM);
  struct stat st;
  char **av;
  int k = 0;
  if (stat(program, &st) == 0 && S_ISDIR(st.st_mode)) {
    av = xmalloc(sizeof(char *) * (size_t)(nargs + 4 + sizeof DENO_ARGS / sizeof *DENO_ARGS));
    av[k++] = cat3(x, "/deno", "");
    for (int i = 0; DENO_ARGS[i]; i++) av[k++] = (char *)DENO_ARGS[i];
    av[k++] = cat3(program, "/main.js", "");
  } else {
    av = xmalloc(sizeof(char *) * (size_t)(nargs + 2));
    av[k++] = program;
  }
  for (int i = 0; i < nargs; i++) av[k++] = args[i];
  av[k] = NULL;
  execv(av[0], av);
  fprintf(stderr, "%s: cannot run %s: %s\n", name, av[0], strerror(errno));
  exit(127);
}

static int in(const char *const *list, const char *s, size_t n) {
  for (int i = 0; list[i]; i++) {
    if (strlen(list[i]) == n && strncmp(list[i], s, n) == 0) return 1;
  }
  return 0;
}

/* Which of `list` the argument spells as -name or --name (0: none, 1: alone, 2: with "=value"). */
static int flag(const char *const *list, const char *a, const char **value) {
  if (a[0] != '-') return 0;
  const char *n = a + 1 + (a[1] == '-');
  const char *eq = strchr(n, '=');
  if (!eq) return in(list, n, strlen(n)) ? 1 : 0;
  if (!in(list, n, (size_t)(eq - n))) return 0;
  *value = eq + 1;
  return 2;
}

/* The facts, as runtime/launcher_facts.ts renders them. */
enum {
  FACT_OK,
  FACT_LAUNCHER,
  FACT_PROGRAMS,
  FACT_ENV_CONFIG,
  FACT_ENV_XDG,
  FACT_ENV_PATH,
  FACT_CONFIG,
  FACT_CONFIG_EXISTS,
  FACT_CONFIG_TIME,
  FACT_CONFIG_REAL,
  FACT_CONFIG_LATER,
  FACT_CONFIG_TEXT,
  FACT_ABSENT,
  FACT_RUNTIME,
  FACT_CREATE,
  FACT_MARKERS,
  FACT_COUNT
};
static const char *const FACT_NAMES[FACT_COUNT] = {
    "ok",     "launcher",     "programs",    "env_config",   "env_xdg", "env_path", "config",  "config_exists",
    "config_time", "config_real", "config_later", "config_text", "absent",  "runtime", "create", "markers",
};
static char *fact[FACT_COUNT];
static size_t fact_len[FACT_COUNT];

/*
 * Reads the facts file's text: comment lines, and lines `xpu_f_NAME=VALUE` where VALUE is single-quoted
 * spans, `\'` and plain [A-Za-z0-9] (the writer's `'...'\''...'` and `xpu_f_ok=1`). Returns 0 for anything
 * else, as for a file cut short: the facts are written afresh.
 */
static int read_facts(char *t, size_t len) {
  char *end = t + len, *p = t;
  while (p < end) {
    if (*p == '#') {
      char *nl = memchr(p, '\n', (size_t)(end - p));
      if (!nl) return 0;
      p = nl + 1;
      continue;
    }
    if ((size_t)(end - p) < 6 || memcmp(p, "xpu_f_", 6) != 0) return 0;
    p += 6;
    char *eq = memchr(p, '=', (size_t)(end - p));
    if (!eq) return 0;
    int f = -1;
    for (int i = 0; i < FACT_COUNT; i++) {
      if (strlen(FACT_NAMES[i]) == (size_t)(eq - p) && memcmp(FACT_NAMES[i], p, (size_t)(eq - p)) == 0) f = i;
    }
    if (f < 0) return 0;
    p = eq + 1;
    /* The value is rebuilt in place: it never grows. */
    char *w = p, *v = p;
    for (;;) {
      if (p == end) return 0;
      if (*p == '\n') {
        p++;
        break;
      }
      if (*p == '\'') {
        char *q = memchr(p + 1, '\'', (size_t)(end - p - 1));
        if (!q) return 0;
        memmove(w, p + 1, (size_t)(q - p - 1));
        w += q - p - 1;
        p = q + 1;
      } else if (*p == '\\' && p + 1 < end && p[1] == '\'') {
        *w++ = '\'';
        p += 2;
      } else if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
        *w++ = *p++;
      } else {
        return 0;
      }
    }
    fact[f] = v;
    fact_len[f] = (size_t)(w - v);
    /* The value ends where it was rebuilt; the next line starts at p, after it. */
    *w = 0;
  }
  return 1;
}

static int is(int f, const char *s) {
  return fact[f] && strcmp(fact[f], s) == 0;
}

/* Calls `fn` with each line of a fact (a list, one path per line) until it returns nonzero. */
static int any_line(int f, int (*fn)(const char *, const char *), const char *arg) {
  if (!fact[f] || !fact[f][0]) return 0;
  char *copy = strdup(fact[f]);
  if (!copy) return 1;
  for (char *line = copy, *nl;; line = nl + 1) {
    nl = strchr(line, '\n');
    if (nl) *nl = 0;
    if (fn(line, arg)) return 1;
    if (!nl) return 0;
  }
}

/* test -f and -x: an executable file (the second argument unused, for any_line). */
static int executable(const char *p, const char *unused) {
  (void)unused;
  return is_file(p) && may(p, X_OK);
}

int main(int argc, char **argv) {
  args = argv + 1;
  nargs = argc - 1;
  /* $0 as the shell has it: the path execve was given (not argv[0], which the caller chooses). */
  const char *execfn = (const char *)getauxval(AT_EXECFN);
  if (!execfn) execfn = argv[0] ? argv[0] : "xpu-container-runtime";
  int n = 0;
  if (execfn[0] == '/') {
    n = snprintf(self, sizeof self, "%s", execfn);
  } else {
    /* Relative: from the logical working folder the caller passed in PWD when it is this one, as a shell does. */
    char cwd[PATH_MAX];
    const char *pwd = getenv("PWD");
    if (!pwd || pwd[0] != '/' || !same(pwd, ".")) pwd = getcwd(cwd, sizeof cwd) ? cwd : "";
    n = snprintf(self, sizeof self, "%s/%s", pwd, execfn);
  }
  if (n < 0 || (size_t)n >= sizeof self) {
    fprintf(stderr, "xpu-container-runtime: the launcher's path %s is longer than PATH_MAX\n", execfn);
    return 127;
  }
  name = strrchr(self, '/') + 1;
  if (getenv("XPU_RUNTIME_NO_FAST_PATH") && *getenv("XPU_RUNTIME_NO_FAST_PATH")) full(NULL);

  /* The command word and, for create and run, the bundle: the usual form of runc's grammar only (global flags,
     the command, its flags, then the container id, every flag known), as the shell launcher reads it. */
  const char *cmd = NULL, *bundle = ".", *id = NULL, *value;
  char want = 0;
  int nbundle = 0;
  for (int i = 0; i < nargs; i++) {
    const char *a = args[i];
    if (want) {
      /* A command flag's value that looks like a flag is reordered by runc's CLI library: not read here. */
      if (want == 'b' && (a[0] == 0 || a[0] == '-')) full(NULL);
      if (want == 'v' && a[0] == '-') full(NULL);
      if (want == 'b') bundle = a;
      want = 0;
      continue;
    }
    if (!cmd) {
      int g = flag(GLOBAL_VALUE_FLAGS, a, &value);
      if (g == 1) want = 'g';
      else if (g == 2 || flag(GLOBAL_BOOL_FLAGS, a, &value) == 1) continue;
      else if (a[0] == '-') full(NULL);
      else {
        cmd = a;
        if (strcmp(a, "create") != 0 && strcmp(a, "run") != 0) break;
      }
      continue;
    }
    if (id) full(NULL);
    int b = flag(BUNDLE_FLAGS, a, &value);
    if (b == 1) {
      want = 'b';
      nbundle++;
    } else if (b == 2) {
      bundle = value;
      nbundle++;
      if (!bundle[0]) full(NULL);
    } else if ((b = flag(COMMAND_VALUE_FLAGS, a, &value)) == 1) {
      want = 'v';
    } else if (b == 2 || flag(COMMAND_BOOL_FLAGS, a, &value) == 1) {
      continue;
    } else if (flag(RUN_ONLY_FLAGS, a, &value) == 1) {
      if (strcmp(cmd, "run") != 0) full(NULL);
    } else if (a[0] == '-') {
      full(NULL);
    } else {
      id = a;
    }
  }
  if (want || !cmd || !cmd[0]) full(NULL);
  int creates = strcmp(cmd, "create") == 0 || strcmp(cmd, "run") == 0;
  if (creates && (!id || nbundle > 1)) full(NULL);

  /* The facts, kept per launcher and config choice: "launcher.", then "$0:$XPU_CTK_CONFIG_FILE_PATH:
     $XDG_CONFIG_HOME" with each "/" as "%", in a folder only their owner can write. */
  char *key = cat3(self, ":", env("XPU_CTK_CONFIG_FILE_PATH"));
  key = cat3(key, ":", env("XDG_CONFIG_HOME"));
  if (strlen(key) > 200) full(NULL);
  for (char *c = key; *c; c++) {
    if (*c == '/') *c = '%';
  }
  const char *dir = env("XPU_RUNTIME_CACHE_DIR");
  if (!dir[0]) dir = CACHE_FOLDER;
  char *facts = cat3(dir, "/launcher.", key);
  if (!is_file(facts) || !owned(facts) || !owned(dir)) full(facts);
  size_t len;
  char *text = slurp(facts, &len);
  if (!text || !read_facts(text, len)) full(facts);
  if (!is(FACT_OK, "1") || !fact[FACT_LAUNCHER] || !same(fact[FACT_LAUNCHER], self) ||
      !is(FACT_ENV_CONFIG, env("XPU_CTK_CONFIG_FILE_PATH")) || !is(FACT_ENV_XDG, env("XDG_CONFIG_HOME")) ||
      !is(FACT_ENV_PATH, env("PATH")) || newer(self, facts))
    full(facts);
  /* A program rebuilt or reinstalled since, or an executable probed before the runtime that now is one, makes
     them stale; so does a runtime that no longer is one. */
  const char *runtime = fact[FACT_RUNTIME] ? fact[FACT_RUNTIME] : "";
  if (any_line(FACT_PROGRAMS, newer, facts) || any_line(FACT_ABSENT, executable, NULL) ||
      !executable(runtime, NULL))
    full(facts);
  /* The config must be the one the facts were derived from (or still be absent): by its time, to the
     nanosecond, and by being the same file, when its time had settled; else by its very bytes. */
  const char *config = fact[FACT_CONFIG] ? fact[FACT_CONFIG] : "";
  int later = 0;
  if (fact[FACT_CONFIG_EXISTS] && fact[FACT_CONFIG_EXISTS][0]) {
    if (!is_file(config) || !may(config, R_OK) || newer(config, facts)) full(facts);
    const char *t = fact[FACT_CONFIG_TIME];
    if (t && t[0]) {
      if (!is_file(t) || newer(config, t) || newer(t, config) || !fact[FACT_CONFIG_REAL] ||
          !same(config, fact[FACT_CONFIG_REAL]))
        full(facts);
    } else {
      size_t n;
      char *bytes = slurp(config, &n);
      if (!bytes || memchr(bytes, 0, n)) full(facts);
      /* The shell's read loop ends every line with a newline, the last one too. */
      int add = n > 0 && bytes[n - 1] != '\n';
      if (!fact[FACT_CONFIG_TEXT] || fact_len[FACT_CONFIG_TEXT] != n + (size_t)add ||
          memcmp(fact[FACT_CONFIG_TEXT], bytes, n) != 0 || (add && fact[FACT_CONFIG_TEXT][n] != '\n'))
        full(facts);
      later = fact[FACT_CONFIG_LATER] && fact[FACT_CONFIG_LATER][0];
    }
  } else if (exists(config)) {
    full(facts);
  }
  if (same(runtime, self)) {
    fprintf(stderr,
            "%s: runtimes in %s names xpu-container-runtime itself (%s); set xpu-container-runtime.runtimes to "
            "the low-level runtime, e.g. runc\n",
            name, config, runtime);
    return 1;
  }

  /* A create whose spec holds none of the request markers is forwarded with its spec untouched. A create that
     needs the full runtime writes facts checked by the config's bytes afresh when its time may by now be taken. */
  if (creates) {
    const char *go = later ? facts : NULL;
    char *spec = cat3(bundle, "/config.json", "");
    size_t n;
    char *bytes;
    if (!is(FACT_CREATE, "grep") || !(bytes = slurp(spec, &n))) full(go);
    if (!fact[FACT_MARKERS] || !fact[FACT_MARKERS][0]) full(go);
    char *m = fact[FACT_MARKERS];
    for (char *nl;; m = nl + 1) {
      nl = strchr(m, '\n');
      size_t ml = nl ? (size_t)(nl - m) : strlen(m);
      if (ml == 0 || memmem(bytes, n, m, ml)) full(go);
      if (!nl) break;
    }
  }
  char **av = xmalloc(sizeof(char *) * (size_t)(nargs + 2));
  av[0] = (char *)runtime;
  for (int i = 0; i < nargs; i++) av[i + 1] = args[i];
  av[nargs + 1] = NULL;
  execv(runtime, av);
  fprintf(stderr, "%s: cannot run %s: %s\n", name, runtime, strerror(errno));
  return 127;
}
