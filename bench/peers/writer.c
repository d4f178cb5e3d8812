// The C reference writer: TOTAL bytes in CHUNK-byte writes to PIPE, keeping two overlapped
// WriteFiles in flight ("C, 2 writes in flight" in bench/RESULTS.md). Plain Win32 C; the same
// command line as the other writers:
//
//   writer.exe PIPE CHUNK TOTAL
//
// Every write must complete in full. Any failure prints one line on stderr and exits 1.
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define IN_FLIGHT 2

static void fail(const char *what) {
  fprintf(stderr, "writer: %s failed: error %lu\n", what, GetLastError());
  exit(1);
}

// One write in flight. From WriteFile until GetOverlappedResult reports it complete, `ov` and
// `buffer` are the system's: neither may be touched, moved or freed. Each slot has its own
// buffer (the two writes never share memory) and its own event: with two writes in flight on
// one handle, GetOverlappedResult must wait on the write's own event, since the handle itself is
// signalled by whichever completes.
struct slot {
  OVERLAPPED ov;
  char *buffer;
  DWORD len;
};

static void start(HANDLE pipe, struct slot *s, DWORD len) {
  s->len = len;
  // For a pipe the offset is ignored; WriteFile resets the event before it starts.
  s->ov.Offset = s->ov.OffsetHigh = 0;
  // The byte count pointer is NULL: for an overlapped write it is meaningless (the count comes
  // from GetOverlappedResult). TRUE means done already, and the completion is still reported
  // through the OVERLAPPED and its event, so both cases are waited for alike.
  if (!WriteFile(pipe, s->buffer, len, NULL, &s->ov) && GetLastError() != ERROR_IO_PENDING) {
    fail("WriteFile");
  }
}

static void finish(HANDLE pipe, struct slot *s) {
  DWORD n = 0;
  if (!GetOverlappedResult(pipe, &s->ov, &n, TRUE)) fail("WriteFile (GetOverlappedResult)");
  if (n != s->len) {
    fprintf(stderr, "writer: short write: %lu of %lu bytes\n", n, s->len);
    exit(1);
  }
}

static unsigned long long number(const wchar_t *arg) {
  wchar_t *end = NULL;
  unsigned long long v = wcstoull(arg, &end, 10);
  return *end ? 0 : v;
}

int wmain(int argc, wchar_t **argv) {
  unsigned long long chunk = argc == 4 ? number(argv[2]) : 0;
  unsigned long long total = argc == 4 ? number(argv[3]) : 0;
  if (argc != 4 || chunk == 0 || chunk > (1u << 30) || total == 0) {
    fprintf(stderr, "usage: writer PIPE CHUNK_BYTES TOTAL_BYTES (chunk at most 1 GiB)\n");
    return 2;
  }
  const wchar_t *name = argv[1];

  // Connect as a client. Busy (every instance taken): wait for one, then try again; not found (no
  // instance yet): try again shortly. Both for at most 10 s.
  HANDLE pipe;
  ULONGLONG deadline = GetTickCount64() + 10000;
  for (;;) {
    pipe = CreateFileW(name, GENERIC_WRITE, 0, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
    if (pipe != INVALID_HANDLE_VALUE) break;
    DWORD e = GetLastError();
    if ((e != ERROR_PIPE_BUSY && e != ERROR_FILE_NOT_FOUND) || GetTickCount64() > deadline) {
      fail("CreateFileW");
    }
    if (e == ERROR_PIPE_BUSY) {
      WaitNamedPipeW(name, 1000);
    } else {
      Sleep(10);
    }
  }

  struct slot slots[IN_FLIGHT];
  memset(slots, 0, sizeof slots);
  for (int i = 0; i < IN_FLIGHT; i++) {
    slots[i].buffer = malloc(chunk);
    if (!slots[i].buffer) {
      fprintf(stderr, "writer: out of memory\n");
      return 1;
    }
    memset(slots[i].buffer, 0x5a, chunk);
    // Manual-reset, as GetOverlappedResult expects; unnamed, not inherited.
    slots[i].ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!slots[i].ov.hEvent) fail("CreateEventW");
  }

  // Fill both slots, then: wait for the oldest write, check it, start the next one in its slot.
  // A pipe completes writes in the order they were issued, so the oldest is the next to finish.
  unsigned long long issued = 0;
  int in_flight = 0, oldest = 0;
  for (int i = 0; i < IN_FLIGHT && issued < total; i++, in_flight++) {
    DWORD len = (DWORD)(total - issued < chunk ? total - issued : chunk);
    start(pipe, &slots[i], len);
    issued += len;
  }
  while (in_flight > 0) {
    struct slot *s = &slots[oldest];
    finish(pipe, s);
    in_flight--;
    if (issued < total) {
      DWORD len = (DWORD)(total - issued < chunk ? total - issued : chunk);
      start(pipe, s, len);
      issued += len;
      in_flight++;
    }
    oldest = (oldest + 1) % IN_FLIGHT;
  }

  // Every byte is in the pipe. FlushFileBuffers waits until the reader has taken them all; the
  // reader closes the connection once it has, which can end the wait with ERROR_BROKEN_PIPE or
  // ERROR_PIPE_NOT_CONNECTED instead of success. The reader's byte count is the check.
  if (!FlushFileBuffers(pipe)) {
    DWORD e = GetLastError();
    if (e != ERROR_BROKEN_PIPE && e != ERROR_PIPE_NOT_CONNECTED && e != ERROR_NO_DATA) {
      fail("FlushFileBuffers");
    }
  }
  CloseHandle(pipe);
  for (int i = 0; i < IN_FLIGHT; i++) {
    CloseHandle(slots[i].ov.hEvent);
    free(slots[i].buffer);
  }
  return 0;
}
