// The C peers of the Unix-socket throughput bench (bench/compare_unix.mjs), plain POSIX:
//
//   unix_stream sink PATH RESULT_FILE EXPECTED   the one reader every writer writes into, and
//                                                 the C column of the read bench
//   unix_stream writer PATH CHUNK TOTAL          the C column of the write bench, and the source
//                                                 that writes into each reader of the read bench
//
// The sink listens at PATH (appending {"ready":true} to RESULT_FILE once it does) and takes
// connections one after another. Each is read, with blocking 1 MiB reads, until EXPECTED bytes
// have come or the writer closed; then {"bytes":N,"ms":T} is appended, T from the accept to the
// last byte, and the sink closes the connection. It runs until it is killed.
//
// The writer connects to PATH (retrying while nobody listens yet, up to 10 s), writes TOTAL bytes
// in CHUNK-byte blocking write() calls (the rest of a short one next), one call per chunk,
// nothing gathered, and closes. Exits 0, or 1 with the failed call on stderr.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUFFER_SIZE (1 << 20)

static void fail(const char *what) {
  fprintf(stderr, "unix_stream: %s failed: %s\n", what, strerror(errno));
  exit(1);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static struct sockaddr_un address(const char *path) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a.sun_path) {
    fprintf(stderr, "unix_stream: path too long: %s\n", path);
    exit(2);
  }
  strcpy(a.sun_path, path);
  return a;
}

// Appends one line, opening and closing the file each time so the driver may read it between.
static void record(const char *file, const char *line) {
  FILE *f = fopen(file, "a");
  if (!f || fputs(line, f) < 0 || fclose(f) != 0) fail("appending to the result file");
}

static int sink(const char *path, const char *result, unsigned long long expected) {
  struct sockaddr_un a = address(path);
  int server = socket(AF_UNIX, SOCK_STREAM, 0);
  if (server < 0) fail("socket");
  unlink(path);
  if (bind(server, (struct sockaddr *)&a, sizeof a) != 0) fail("bind");
  if (listen(server, 16) != 0) fail("listen");
  char *buffer = malloc(BUFFER_SIZE);
  if (!buffer) fail("malloc");
  record(result, "{\"ready\":true}\n");
  for (;;) {
    int s = accept(server, NULL, NULL);
    if (s < 0) fail("accept");
    double t0 = now_ms();
    unsigned long long bytes = 0;
    int error = 0;
    while (bytes < expected) {
      ssize_t n = read(s, buffer, BUFFER_SIZE);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) error = errno;
      if (n <= 0) break;
      bytes += (unsigned long long)n;
    }
    double ms = now_ms() - t0;
    char line[200];
    if (error) {
      snprintf(line, sizeof line, "{\"bytes\":%llu,\"ms\":%.3f,\"error\":\"read: %s\"}\n", bytes,
               ms, strerror(error));
    } else {
      snprintf(line, sizeof line, "{\"bytes\":%llu,\"ms\":%.3f}\n", bytes, ms);
    }
    record(result, line);
    close(s);
  }
  return 0; // not reached: killed by the driver
}

static int writer(const char *path, size_t chunk, unsigned long long total) {
  struct sockaddr_un a = address(path);
  int s = -1;
  for (int tries = 0;; tries++) {
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) fail("socket");
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) break;
    if ((errno != ENOENT && errno != ECONNREFUSED) || tries >= 1000) fail("connect");
    close(s);
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  char *buffer = malloc(chunk);
  if (!buffer) fail("malloc");
  memset(buffer, 0x5a, chunk);
  unsigned long long sent = 0;
  while (sent < total) {
    size_t n = total - sent < chunk ? (size_t)(total - sent) : chunk;
    for (size_t off = 0; off < n;) {
      ssize_t k = write(s, buffer + off, n - off);
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) fail("write");
      off += (size_t)k;
    }
    sent += n;
  }
  close(s);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "sink") == 0) {
    return sink(argv[2], argv[3], strtoull(argv[4], NULL, 10));
  }
  if (argc == 5 && strcmp(argv[1], "writer") == 0) {
    return writer(argv[2], (size_t)strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
  }
  fprintf(stderr, "usage: unix_stream sink PATH RESULT_FILE EXPECTED\n"
                  "       unix_stream writer PATH CHUNK TOTAL\n");
  return 2;
}
