// The C test guest of WASI preview 1 capabilities: a reactor core module (the host calls
// _initialize, then the exports) built with clang + wasi-libc by scripts/guests.sh into
// c_caps.wasm. It checks that a plain preview 1 program sees the same grants and denials
// as a component.
//
// Every export takes and returns only i32, so the host can call it without any ABI. Paths
// and names are strings, so they come through the guest's argv (the host's wasi.args) and
// the exports take argv indexes. Failures are returned as -errno, with wasi-libc's errno
// values (ENOENT 44, EACCES 2, EINVAL 28, EPERM 63, EROFS 69, ENOTCAPABLE 76).

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>
#include <wasi/libc-environ.h>

// unistd.h declares it only under _GNU_SOURCE/_BSD_SOURCE.
extern char **environ;

#define EXPORT(name) __attribute__((export_name(name)))

// argv, read once with the raw preview 1 calls (a reactor has no main to receive it).
static int g_argc = -1;
static char **g_argv;

static void load_args(void) {
  if (g_argc >= 0) return;
  g_argc = 0;
  __wasi_size_t count, size;
  if (__wasi_args_sizes_get(&count, &size) != 0) return;
  char **argv = calloc(count + 1, sizeof(char *));
  char *buf = malloc(size ? size : 1);
  if (!argv || !buf) return;
  if (__wasi_args_get((uint8_t **)argv, (uint8_t *)buf) != 0) return;
  g_argv = argv;
  g_argc = (int)count;
}

// argv[i], or NULL when i is out of range.
static const char *arg(int i) {
  load_args();
  return (i >= 0 && i < g_argc) ? g_argv[i] : NULL;
}

// Opens `path` read-only and counts its bytes; -errno on failure.
static int count_bytes(const char *path) {
  if (!path) return -EINVAL;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -errno;
  char buf[4096];
  int total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      int e = errno;
      close(fd);
      return -e;
    }
    if (n == 0) break;
    total += (int)n;
  }
  close(fd);
  return total;
}

// The number of arguments (argv[0] included when the host passes one).
EXPORT("argc") int caps_argc(void) {
  load_args();
  return g_argc;
}

// The size in bytes of the file argv[i]; -errno when it cannot be opened or read.
EXPORT("read_file") int caps_read_file(int i) { return count_bytes(arg(i)); }

// Writes the string argv[j] to the file argv[i] (created or truncated); the number of bytes
// written, or -errno.
EXPORT("write_file") int caps_write_file(int i, int j) {
  const char *path = arg(i), *data = arg(j);
  if (!path || !data) return -EINVAL;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -errno;
  size_t len = strlen(data), done = 0;
  while (done < len) {
    ssize_t n = write(fd, data + done, len - done);
    if (n < 0) {
      int e = errno;
      close(fd);
      return -e;
    }
    done += (size_t)n;
  }
  if (close(fd) != 0) return -errno;
  return (int)done;
}

// strlen(getenv(argv[i])); -1 when the variable is unset, -EINVAL when i is out of range.
EXPORT("env_len") int caps_env_len(int i) {
  const char *name = arg(i);
  if (!name) return -EINVAL;
  const char *v = getenv(name);
  return v ? (int)strlen(v) : -1;
}

// The number of environment variables the guest sees.
EXPORT("env_count") int caps_env_count(void) {
  __wasilibc_ensure_environ();
  int n = 0;
  for (char **e = environ; e && *e; e++) n++;
  return n;
}

// The first byte (0..255) of the file argv[i]; 256 when the file is empty; -errno on failure.
EXPORT("first_byte") int caps_first_byte(int i) {
  const char *path = arg(i);
  if (!path) return -EINVAL;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -errno;
  unsigned char b;
  ssize_t n = read(fd, &b, 1);
  int e = errno;
  close(fd);
  if (n < 0) return -e;
  return n == 0 ? 256 : b;
}

// exit(code): proc_exit, never returns.
EXPORT("quit") int caps_quit(int code) { exit(code); }

// read_file for a relative path argv[i]: wasi-libc resolves it against its cwd ("/" unless
// changed) and then the preopened directories, so this checks the guest's view of the cwd.
EXPORT("cwd_read") int caps_cwd_read(int i) { return count_bytes(arg(i)); }
