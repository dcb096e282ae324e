/*
 * NNG's own pub/sub, push/pull and REQ/REP in C, the yardstick for bench/nng_bench.ts
 * (compiled there at bench time against Debian's libnng-dev, with mbedtls for tls+tcp://;
 * never committed as a binary). bench/_rsock_family.ts takes the same arguments.
 *
 *   nng_family pub URL SIZE COUNT SUBS   listen; once SUBS peers are there, publish COUNT
 *                                        messages of SIZE bytes as fast as pub takes them
 *   nng_family sub URL                   dial; receive until 1 s passes without a message
 *   nng_family push URL SIZE COUNT       dial; push COUNT messages of SIZE bytes
 *   nng_family pull URL COUNT            listen; receive COUNT messages
 *   nng_family rep URL                   listen; echo every request until killed
 *   nng_family req URL SIZE COUNT        dial; COUNT sequential requests of SIZE bytes
 *
 * Receivers and req print {"messages":…,"seconds":…} (first to last message; req: the whole
 * run). TLS: listeners read NNG_TLS_CERT_KEY (one PEM file with the certificate and its key),
 * dialers NNG_TLS_CA.
 */
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void fatal(const char *what, int rv) {
  fprintf(stderr, "nng_family: %s: %s\n", what, nng_strerror(rv));
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void listen_on(nng_socket sock, const char *url) {
  nng_listener l;
  int rv;
  if ((rv = nng_listener_create(&l, sock, url)) != 0) fatal("nng_listener_create", rv);
  const char *certkey = getenv("NNG_TLS_CERT_KEY");
  if (certkey != NULL && strncmp(url, "tls+", 4) == 0) {
    if ((rv = nng_listener_setopt_string(l, NNG_OPT_TLS_CERT_KEY_FILE, certkey)) != 0)
      fatal("tls cert", rv);
  }
  if ((rv = nng_listener_start(l, 0)) != 0) fatal("nng_listener_start", rv);
}

static void dial_to(nng_socket sock, const char *url) {
  nng_dialer d;
  int rv;
  if ((rv = nng_dialer_create(&d, sock, url)) != 0) fatal("nng_dialer_create", rv);
  const char *ca = getenv("NNG_TLS_CA");
  if (ca != NULL && strncmp(url, "tls+", 4) == 0) {
    if ((rv = nng_dialer_setopt_string(d, NNG_OPT_TLS_CA_FILE, ca)) != 0) fatal("tls ca", rv);
  }
  /* Non-blocking: keep trying until the listener is up. */
  if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) fatal("nng_dialer_start", rv);
}

/*
 * Queue depths as rsock's defaults (pub 1024 per pipe, sub and pull 1024, push 16), so both
 * sides drop or wait at the same depth; NNG's own defaults are shallower (pub 16, push 0).
 * An option this NNG does not know is left at its default.
 */
static void depth(nng_socket sock, const char *name, int value) {
  int rv = nng_setopt_int(sock, name, value);
  if (rv != 0 && rv != NNG_ENOTSUP) fatal(name, rv);
}

static int pipes = 0;
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg) {
  (void)p;
  (void)arg;
  if (ev == NNG_PIPE_EV_ADD_POST) __atomic_add_fetch(&pipes, 1, __ATOMIC_SEQ_CST);
}

static void receive(nng_socket sock, long count) {
  int rv;
  long got = 0;
  double first = 0, last = 0;
  if ((rv = nng_setopt_ms(sock, NNG_OPT_RECVTIMEO, 1000)) != 0) fatal("recvtimeo", rv);
  while (count < 0 || got < count) {
    nng_msg *msg;
    rv = nng_recvmsg(sock, &msg, 0);
    if (rv == NNG_ETIMEDOUT && (got > 0 || count < 0)) {
      if (got > 0) break;
      continue;
    }
    if (rv == NNG_ETIMEDOUT) continue;
    if (rv != 0) fatal("nng_recvmsg", rv);
    last = now_s();
    if (got++ == 0) first = last;
    nng_msg_free(msg);
  }
  printf("{\"messages\":%ld,\"seconds\":%.6f}\n", got, last - first);
}

int main(int argc, char **argv) {
  nng_socket sock;
  int rv;
  if (argc < 3) {
    fprintf(stderr, "usage: see the comment at the top of nng_family.c\n");
    return 2;
  }
  const char *role = argv[1], *url = argv[2];
  if (strcmp(role, "pub") == 0 && argc == 6) {
    size_t size = strtoul(argv[3], NULL, 10);
    long count = atol(argv[4]);
    int subs = atoi(argv[5]);
    if ((rv = nng_pub0_open(&sock)) != 0) fatal("nng_pub0_open", rv);
    depth(sock, NNG_OPT_SENDBUF, 1024);
    nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, on_pipe, NULL);
    listen_on(sock, url);
    printf("ready\n");
    fflush(stdout);
    while (__atomic_load_n(&pipes, __ATOMIC_SEQ_CST) < subs) nng_msleep(10);
    nng_msleep(200);
    char *payload = calloc(1, size ? size : 1);
    for (long i = 0; i < count; i++) {
      if ((rv = nng_send(sock, payload, size, 0)) != 0) fatal("nng_send", rv);
    }
    nng_msleep(1500); /* let the subscribers drain before the pipes close */
    return 0;
  }
  if (strcmp(role, "sub") == 0 && argc == 3) {
    if ((rv = nng_sub0_open(&sock)) != 0) fatal("nng_sub0_open", rv);
    depth(sock, NNG_OPT_RECVBUF, 1024);
    if ((rv = nng_setopt(sock, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0) fatal("subscribe", rv);
    dial_to(sock, url);
    receive(sock, -1);
    return 0;
  }
  if (strcmp(role, "push") == 0 && argc == 5) {
    size_t size = strtoul(argv[3], NULL, 10);
    long count = atol(argv[4]);
    if ((rv = nng_push0_open(&sock)) != 0) fatal("nng_push0_open", rv);
    depth(sock, NNG_OPT_SENDBUF, 16);
    if ((rv = nng_setopt_size(sock, NNG_OPT_RECVMAXSZ, 0)) != 0) fatal("recvmaxsz", rv);
    dial_to(sock, url);
    char *payload = calloc(1, size ? size : 1);
    for (long i = 0; i < count; i++) {
      if ((rv = nng_send(sock, payload, size, 0)) != 0) fatal("nng_send", rv);
    }
    nng_msleep(1000); /* linger: let the last messages go out */
    return 0;
  }
  if (strcmp(role, "pull") == 0 && argc == 4) {
    if ((rv = nng_pull0_open(&sock)) != 0) fatal("nng_pull0_open", rv);
    depth(sock, NNG_OPT_RECVBUF, 1024);
    if ((rv = nng_setopt_size(sock, NNG_OPT_RECVMAXSZ, 0)) != 0) fatal("recvmaxsz", rv);
    listen_on(sock, url);
    printf("ready\n");
    fflush(stdout);
    receive(sock, atol(argv[3]));
    return 0;
  }
  if (strcmp(role, "rep") == 0 && argc == 3) {
    if ((rv = nng_rep0_open(&sock)) != 0) fatal("nng_rep0_open", rv);
    if ((rv = nng_setopt_size(sock, NNG_OPT_RECVMAXSZ, 0)) != 0) fatal("recvmaxsz", rv);
    listen_on(sock, url);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
      nng_msg *msg;
      if ((rv = nng_recvmsg(sock, &msg, 0)) != 0) fatal("nng_recvmsg", rv);
      if ((rv = nng_sendmsg(sock, msg, 0)) != 0) fatal("nng_sendmsg", rv);
    }
  }
  if (strcmp(role, "req") == 0 && argc == 5) {
    size_t size = strtoul(argv[3], NULL, 10);
    long count = atol(argv[4]);
    if ((rv = nng_req0_open(&sock)) != 0) fatal("nng_req0_open", rv);
    if ((rv = nng_setopt_size(sock, NNG_OPT_RECVMAXSZ, 0)) != 0) fatal("recvmaxsz", rv);
    dial_to(sock, url);
    char *payload = calloc(1, size ? size : 1);
    double start = 0;
    for (long i = -count / 10 - 1; i < count; i++) {
      if (i == 0) start = now_s(); /* the first tenth warms up, untimed */
      if ((rv = nng_send(sock, payload, size, 0)) != 0) fatal("nng_send", rv);
      char *buf = NULL;
      size_t got = 0;
      if ((rv = nng_recv(sock, &buf, &got, NNG_FLAG_ALLOC)) != 0) fatal("nng_recv", rv);
      nng_free(buf, got);
    }
    printf("{\"messages\":%ld,\"seconds\":%.6f}\n", count, now_s() - start);
    return 0;
  }
  fprintf(stderr, "nng_family: unknown role or wrong arguments\n");
  return 2;
}
