// The load of the HTTP bench (bench/compare_http.mjs): CONNS threads, each sending a small GET on
// a keep-alive connection to the Unix socket PATH and reading the whole response before the
// next, for SECONDS. A response that says "Connection: close" (or a server that closes) costs a
// reconnect, which is counted in the time. Plain POSIX, blocking I/O.
//
//   http_load PATH CONNS SECONDS RESULT_FILE    appends {"requestsPerSec":R,"reconnects":N}
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *path;
static double seconds;
static const char REQUEST[] = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int open_socket(void) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, path, sizeof a.sun_path - 1);
  for (int tries = 0; tries < 1000; tries++) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) break;
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) return s;
    close(s);
    if (errno != EAGAIN && errno != ECONNREFUSED) break;
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
  fprintf(stderr, "http_load: connect %s failed: %s\n", path, strerror(errno));
  exit(1);
}

struct worker {
  pthread_t thread;
  long requests;
  long reconnects;
  int failed;
};

/** One response: its head, then Content-Length bytes (or chunks up to the last). -1: closed. */
static int read_response(int s, char *buf, size_t cap, int *close_after) {
  size_t have = 0;
  char *end = NULL;
  while (!end) {
    ssize_t n = read(s, buf + have, cap - 1 - have);
    if (n <= 0) return -1;
    have += (size_t)n;
    buf[have] = 0;
    end = strstr(buf, "\r\n\r\n");
    if (!end && have >= cap - 1) return -1;
  }
  size_t head = (size_t)(end + 4 - buf);
  if (strncmp(buf, "HTTP/1.1 200", 12) != 0) return -1;
  *close_after = 0;
  long length = -1;
  int chunked = 0;
  for (char *line = strstr(buf, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
    if (strncasecmp(line, "content-length:", 15) == 0) length = atol(line + 15);
    if (strncasecmp(line, "connection:", 11) == 0) {
      char *eol = strstr(line, "\r\n");
      char *word = strstr(line, "close");
      if (word && word < eol) *close_after = 1;
    }
    if (strncasecmp(line, "transfer-encoding:", 18) == 0) chunked = 1;
  }
  if (chunked) {
    // A small body: read until the last chunk's "0\r\n\r\n".
    while (!strstr(buf + head, "0\r\n\r\n")) {
      ssize_t n = read(s, buf + have, cap - 1 - have);
      if (n <= 0) return -1;
      have += (size_t)n;
      buf[have] = 0;
    }
    return 0;
  }
  if (length < 0) return -1;
  size_t body = have - head;
  while ((long)body < length) {
    ssize_t n = read(s, buf, cap);
    if (n <= 0) return -1;
    body += (size_t)n;
  }
  return 0;
}

static void *run(void *arg) {
  struct worker *w = arg;
  char buf[65536];
  int s = open_socket();
  double end = now() + seconds;
  while (now() < end) {
    size_t n = sizeof REQUEST - 1;
    if (write(s, REQUEST, n) != (ssize_t)n) {
      w->failed = 1;
      break;
    }
    int close_after = 0;
    if (read_response(s, buf, sizeof buf, &close_after) != 0) {
      w->failed = 1;
      break;
    }
    w->requests++;
    if (close_after) {
      close(s);
      s = open_socket();
      w->reconnects++;
    }
  }
  close(s);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: http_load PATH CONNS SECONDS RESULT_FILE\n");
    return 2;
  }
  path = argv[1];
  int conns = atoi(argv[2]);
  seconds = atof(argv[3]);
  struct worker *workers = calloc((size_t)conns, sizeof *workers);
  double start = now();
  for (int i = 0; i < conns; i++) pthread_create(&workers[i].thread, NULL, run, &workers[i]);
  long requests = 0, reconnects = 0;
  int failed = 0;
  for (int i = 0; i < conns; i++) {
    pthread_join(workers[i].thread, NULL);
    requests += workers[i].requests;
    reconnects += workers[i].reconnects;
    failed |= workers[i].failed;
  }
  double elapsed = now() - start;
  if (failed) fprintf(stderr, "http_load: a connection failed mid-run\n");
  FILE *f = fopen(argv[4], "a");
  if (!f) return 1;
  fprintf(f, "{\"requestsPerSec\":%.1f,\"reconnects\":%ld,\"failed\":%s}\n", requests / elapsed,
          reconnects, failed ? "true" : "false");
  fclose(f);
  return failed ? 1 : 0;
}
