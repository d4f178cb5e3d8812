// The C pair of the Unix-socket round-trip bench (bench/compare_unix.mjs), plain POSIX, with
// blocking reads and writes; the same command lines and result lines as rt_server.cjs and
// rt_client.cjs:
//
//   unix_rt server PATH READY_FILE               echoes every byte back, one client at a time;
//                                                 writes READY_FILE once it listens
//   unix_rt client PATH COUNT SIZE RESULT_FILE   COUNT exchanges of SIZE bytes, one at a time;
//                                                 appends {"roundTripsPerSec":R}
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void fail(const char *what) {
  fprintf(stderr, "unix_rt: %s failed: %s\n", what, strerror(errno));
  exit(1);
}

static struct sockaddr_un address(const char *path) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a.sun_path) {
    fprintf(stderr, "unix_rt: path too long: %s\n", path);
    exit(2);
  }
  strcpy(a.sun_path, path);
  return a;
}

static void write_all(int s, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = write(s, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) fail("write");
    p += k;
    n -= (size_t)k;
  }
}

static int server(const char *path, const char *ready) {
  struct sockaddr_un a = address(path);
  int listener = socket(AF_UNIX, SOCK_STREAM, 0);
  if (listener < 0) fail("socket");
  unlink(path);
  if (bind(listener, (struct sockaddr *)&a, sizeof a) != 0) fail("bind");
  if (listen(listener, 16) != 0) fail("listen");
  FILE *f = fopen(ready, "w");
  if (!f || fputs("ready", f) < 0 || fclose(f) != 0) fail("writing the ready file");
  char buffer[65536];
  for (;;) {
    int s = accept(listener, NULL, NULL);
    if (s < 0) fail("accept");
    for (;;) {
      ssize_t n = read(s, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      write_all(s, buffer, (size_t)n);
    }
    close(s);
  }
  return 0; // not reached: killed by the driver
}

static int client(const char *path, long count, size_t size, const char *result) {
  struct sockaddr_un a = address(path);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s < 0) fail("socket");
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) fail("connect");
  char *request = malloc(size), *response = malloc(size);
  if (!request || !response) fail("malloc");
  memset(request, 0x61, size);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < count; i++) {
    write_all(s, request, size);
    for (size_t got = 0; got < size;) {
      ssize_t n = read(s, response + got, size - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("read");
      got += (size_t)n;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  FILE *f = fopen(result, "a");
  if (!f || fprintf(f, "{\"roundTripsPerSec\":%.1f}\n", (double)count / seconds) < 0
      || fclose(f) != 0) {
    fail("appending to the result file");
  }
  close(s);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "server") == 0) return server(argv[2], argv[3]);
  if (argc == 6 && strcmp(argv[1], "client") == 0) {
    return client(argv[2], strtol(argv[3], NULL, 10), (size_t)strtoull(argv[4], NULL, 10),
                  argv[5]);
  }
  fprintf(stderr, "usage: unix_rt server PATH READY_FILE\n"
                  "       unix_rt client PATH COUNT SIZE RESULT_FILE\n");
  return 2;
}
