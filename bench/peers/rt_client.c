// Round-trip client, plain Win32 C: COUNT request/response exchanges of SIZE bytes, one at a
// time, with blocking writes and reads. The reference for the round-trip bench
// (bench/ipc_windows.ts); the same command line and result line as rt_client.cjs:
//
//   rt_client.exe PIPE COUNT SIZE RESULT_FILE
//
// Appends {"roundTripsPerSec":R} to RESULT_FILE, or {"error":"..."} and exits 1.
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static const wchar_t *result_file;

static void record(const char *line) {
  HANDLE f = CreateFileW(result_file, FILE_APPEND_DATA,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_ALWAYS,
                         FILE_ATTRIBUTE_NORMAL, NULL);
  DWORD len = (DWORD)strlen(line), written = 0;
  if (f == INVALID_HANDLE_VALUE || !WriteFile(f, line, len, &written, NULL) || written != len) {
    fprintf(stderr, "rt_client: cannot append to the result file: error %lu\n", GetLastError());
    exit(1);
  }
  CloseHandle(f);
}

static void fail(const char *what) {
  char line[160];
  snprintf(line, sizeof line, "{\"error\":\"%s failed: error %lu\"}\n", what, GetLastError());
  fputs(line, stderr);
  record(line);
  exit(1);
}

int wmain(int argc, wchar_t **argv) {
  unsigned long count = argc == 5 ? wcstoul(argv[2], NULL, 10) : 0;
  unsigned long size = argc == 5 ? wcstoul(argv[3], NULL, 10) : 0;
  if (argc != 5 || count == 0 || size == 0 || size > (1u << 20)) {
    fprintf(stderr, "usage: rt_client PIPE COUNT SIZE RESULT_FILE (size at most 1 MiB)\n");
    return 2;
  }
  const wchar_t *name = argv[1];
  result_file = argv[4];
  char *request = malloc(size), *response = malloc(size);
  if (!request || !response) fail("malloc");
  memset(request, 0x61, size);

  // Busy: wait for an instance and try again; not found: try again shortly; 10 s in all.
  HANDLE pipe;
  ULONGLONG deadline = GetTickCount64() + 10000;
  for (;;) {
    pipe = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
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

  LARGE_INTEGER frequency, t0, t1;
  QueryPerformanceFrequency(&frequency);
  QueryPerformanceCounter(&t0);
  for (unsigned long i = 0; i < count; i++) {
    DWORD n = 0;
    if (!WriteFile(pipe, request, size, &n, NULL)) fail("WriteFile");
    if (n != size) fail("WriteFile (short)");
    // The echo may come back in pieces: read until the whole response is in.
    for (DWORD got = 0; got < size; got += n) {
      if (!ReadFile(pipe, response + got, size - got, &n, NULL)) fail("ReadFile");
    }
  }
  QueryPerformanceCounter(&t1);
  double seconds = (double)(t1.QuadPart - t0.QuadPart) / (double)frequency.QuadPart;
  char line[80];
  snprintf(line, sizeof line, "{\"roundTripsPerSec\":%.1f}\n", count / seconds);
  record(line);
  CloseHandle(pipe);
  free(request);
  free(response);
  return 0;
}
