/*
 * NNG's own REQ/REP in C, the yardstick for bench/reqrep_bench.ts (compiled there at bench
 * time against Debian's libnng-dev; never committed as a binary).
 *
 *   nng_rr rep URL                 echo every request until killed
 *   nng_rr req URL SIZE COUNT [WARMUP]
 *                                  WARMUP untimed requests (default 0), then COUNT timed
 *                                  sequential requests of SIZE bytes; prints
 *                                  {"median_us":…,"mean_us":…,"mb_per_s":…}
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void fatal(const char *what, int rv) {
  fprintf(stderr, "nng_rr: %s: %s\n", what, nng_strerror(rv));
  exit(1);
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  nng_socket sock;
  int rv;
  if (argc == 3 && strcmp(argv[1], "rep") == 0) {
    if ((rv = nng_rep0_open(&sock)) != 0) fatal("nng_rep0_open", rv);
    if ((rv = nng_setopt_size(sock, NNG_OPT_RECVMAXSZ, 0)) != 0) fatal("recvmaxsz", rv);
    if ((rv = nng_listen(sock, argv[2], NULL, 0)) != 0) fatal("nng_listen", rv);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
      nng_msg *msg;
      if ((rv = nng_recvmsg(sock, &msg, 0)) != 0) fatal("nng_recvmsg", rv);
      if ((rv = nng_sendmsg(sock, msg, 0)) != 0) fatal("nng_sendmsg", rv);
    }
  }
  if ((argc == 5 || argc == 6) && strcmp(argv[1], "req") == 0) {
    size_t size = strtoul(argv[3], NULL, 10);
    int count = atoi(argv[4]);
    int warmup = argc == 6 ? atoi(argv[5]) : 0;
    double *times = calloc(count, sizeof(double));
    char *payload = malloc(size ? size : 1);
    memset(payload, 7, size);
    if ((rv = nng_req0_open(&sock)) != 0) fatal("nng_req0_open", rv);
    if ((rv = nng_setopt_size(sock, NNG_OPT_RECVMAXSZ, 0)) != 0) fatal("recvmaxsz", rv);
    if ((rv = nng_dial(sock, argv[2], NULL, 0)) != 0) fatal("nng_dial", rv);
    double start = 0;
    for (int i = -warmup; i < count; i++) {
      if (i == 0) start = now_us();
      double t0 = now_us();
      nng_msg *msg;
      if ((rv = nng_msg_alloc(&msg, 0)) != 0) fatal("nng_msg_alloc", rv);
      if ((rv = nng_msg_append(msg, payload, size)) != 0) fatal("nng_msg_append", rv);
      if ((rv = nng_sendmsg(sock, msg, 0)) != 0) fatal("nng_sendmsg", rv);
      if ((rv = nng_recvmsg(sock, &msg, 0)) != 0) fatal("nng_recvmsg", rv);
      if (nng_msg_len(msg) != size) {
        fprintf(stderr, "nng_rr: reply of %zu bytes, expected %zu\n", nng_msg_len(msg), size);
        return 1;
      }
      nng_msg_free(msg);
      if (i >= 0) times[i] = now_us() - t0;
    }
    double total = now_us() - start;
    qsort(times, count, sizeof(double), cmp);
    printf("{\"median_us\":%.2f,\"mean_us\":%.2f,\"mb_per_s\":%.1f}\n", times[count / 2],
           total / count, (double)size * count / total);
    nng_close(sock);
    return 0;
  }
  fprintf(stderr, "usage: nng_rr rep URL | nng_rr req URL SIZE COUNT [WARMUP]\n");
  return 2;
}
