// The test command in C (clang + wasi-libc, WASI preview 1, `_start`): argv[1] names what to do,
// so specs and the launcher's tests can check arguments, stdin, stdout, stderr, files in a
// mount, the environment and exit codes of a program not written through Rust's std.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    printf("hello from C\n");
    return 0;
  }
  const char *what = argv[1];
  if (strcmp(what, "echo") == 0) {
    for (int i = 2; i < argc; i++) printf(i > 2 ? " %s" : "%s", argv[i]);
    printf("\n");
    return 0;
  }
  if (strcmp(what, "argv0") == 0) {
    printf("%s\n", argv[0]);
    return 0;
  }
  if (strcmp(what, "cat") == 0) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, n, stdout);
    return 0;
  }
  if (strcmp(what, "err") == 0 && argc > 2) {
    fprintf(stderr, "%s\n", argv[2]);
    return 3;
  }
  if (strcmp(what, "exit") == 0 && argc > 2) {
    exit(atoi(argv[2]));
  }
  if (strcmp(what, "read") == 0 && argc > 2) {
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
      perror(argv[2]);
      return 2;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    fclose(f);
    return 0;
  }
  if (strcmp(what, "write") == 0 && argc > 3) {
    FILE *f = fopen(argv[2], "wb");
    if (!f) {
      perror(argv[2]);
      return 2;
    }
    fputs(argv[3], f);
    fclose(f);
    return 0;
  }
  if (strcmp(what, "env") == 0 && argc > 2) {
    const char *v = getenv(argv[2]);
    printf("%s\n", v ? v : "(unset)");
    return v ? 0 : 1;
  }
  fprintf(stderr, "unknown command: %s\n", what);
  return 64;
}
