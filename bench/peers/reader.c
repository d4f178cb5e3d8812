// The sink of the writer comparison (bench/compare_windows.ts) and the C reader of the read bench
// (bench/ipc_windows.ts): plain Win32 C, so that the reader is not what limits a writer. Same
// command line and result lines as reader.cjs:
//
//   reader.exe PIPE RESULT_FILE EXPECTED
//
// Serves PIPE and takes connections one after another. Each is read until EXPECTED bytes have
// come (or the writer closed); the reader then appends {"bytes":N,"ms":T} to RESULT_FILE, T being
// from the connection to the last byte, and closes the connection itself (a byte pipe has no
// half-close). {"ready":true} is appended once the pipe exists. Runs until it is killed.
//
// Plain blocking reads into one 1 MiB buffer: each ReadFile returns whatever the pipe holds, up to
// 1 MiB, and the pipe's own 1 MiB buffer takes the writer's bytes meanwhile.
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define BUFFER_SIZE (1 << 20)

static const wchar_t *result_file;

static void fail(const char *what) {
  fprintf(stderr, "reader: %s failed: error %lu\n", what, GetLastError());
  exit(1);
}

// Appends one line to the result file. Opened and closed for each line, shared for reading and
// deleting, so the driver may read or remove the file at any time between lines.
static void record(const char *line) {
  HANDLE f = CreateFileW(result_file, FILE_APPEND_DATA,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_ALWAYS,
                         FILE_ATTRIBUTE_NORMAL, NULL);
  if (f == INVALID_HANDLE_VALUE) fail("CreateFileW (result file)");
  DWORD len = (DWORD)strlen(line), written = 0;
  if (!WriteFile(f, line, len, &written, NULL) || written != len) fail("WriteFile (result file)");
  CloseHandle(f);
}

// One instance of the pipe: byte mode, blocking, a 1 MiB buffer for the bytes coming in (the
// size is a quota the system may round, not a promise). Duplex although nothing is ever sent:
// clients that open the pipe for reading and writing (Deno's and Bun's node:net) are refused by
// an inbound-only pipe, and Node's falls back to a write-only handle.
static HANDLE instance(const wchar_t *name, BOOL first) {
  HANDLE h = CreateNamedPipeW(
      name, PIPE_ACCESS_DUPLEX | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
      PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
      PIPE_UNLIMITED_INSTANCES, 4096, BUFFER_SIZE, 0, NULL);
  if (h == INVALID_HANDLE_VALUE) fail("CreateNamedPipeW");
  return h;
}

int wmain(int argc, wchar_t **argv) {
  wchar_t *end = NULL;
  unsigned long long expected = argc == 4 ? wcstoull(argv[3], &end, 10) : 0;
  if (argc != 4 || *end || expected == 0) {
    fprintf(stderr, "usage: reader PIPE RESULT_FILE EXPECTED_BYTES\n");
    return 2;
  }
  const wchar_t *name = argv[1];
  result_file = argv[2];
  // Ours for the whole run; ReadFile writes into it only during the call (blocking handle).
  char *buffer = malloc(BUFFER_SIZE);
  if (!buffer) {
    fprintf(stderr, "reader: out of memory\n");
    return 1;
  }
  LARGE_INTEGER frequency;
  QueryPerformanceFrequency(&frequency);

  HANDLE pipe = instance(name, TRUE);
  record("{\"ready\":true}\n");
  for (;;) {
    // ERROR_PIPE_CONNECTED: the client came between CreateNamedPipeW and this call; connected.
    if (!ConnectNamedPipe(pipe, NULL) && GetLastError() != ERROR_PIPE_CONNECTED) {
      fail("ConnectNamedPipe");
    }
    // The next instance at once, so that a writer starting while this one is read finds a pipe
    // to connect to (never ERROR_FILE_NOT_FOUND or ERROR_PIPE_BUSY); it waits in the listening
    // state until ConnectNamedPipe is called on it next time round.
    HANDLE next = instance(name, FALSE);
    LARGE_INTEGER t0, t1;
    QueryPerformanceCounter(&t0);
    unsigned long long bytes = 0;
    DWORD error = 0;
    while (bytes < expected) {
      DWORD n = 0;
      if (!ReadFile(pipe, buffer, BUFFER_SIZE, &n, NULL)) {
        error = GetLastError();
        break;
      }
      bytes += n;
    }
    QueryPerformanceCounter(&t1);
    double ms = (double)(t1.QuadPart - t0.QuadPart) * 1000.0 / (double)frequency.QuadPart;
    char line[160];
    // ERROR_BROKEN_PIPE is the end of the stream (the writer closed): the byte count tells.
    if (error && error != ERROR_BROKEN_PIPE) {
      snprintf(line, sizeof line, "{\"bytes\":%llu,\"ms\":%.3f,\"error\":\"ReadFile: error %lu\"}\n",
               bytes, ms, error);
    } else {
      snprintf(line, sizeof line, "{\"bytes\":%llu,\"ms\":%.3f}\n", bytes, ms);
    }
    record(line);
    // Closing the server end ends the connection; the client's next call fails, and a writer
    // waiting in FlushFileBuffers returns.
    CloseHandle(pipe);
    pipe = next;
  }
}
