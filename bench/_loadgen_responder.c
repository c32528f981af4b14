/* The load generator benchmark's HTTP/1.1 responder (bench/loadgen.py compiles it with gcc into
 * a temp dir at run time; bench/_loadgen_responder.py has a uvloop twin for machines without gcc).
 *
 *     responder DELAY_US STALL_PERIOD_US STALL_LENGTH_US
 *
 * One thread, epoll, level-triggered, keep-alive. Every request (a head ending in CRLF CRLF; no
 * bodies: the benchmark only sends GETs) is answered with a fixed 200 "ok". With DELAY_US > 0 each
 * answer is written DELAY_US after its request was read; with STALL_PERIOD_US > 0, a request read
 * in the last STALL_LENGTH_US of a period (counted from the start) is held until that period ends:
 * a server that stalls once every period. Held answers wait in one FIFO (their due times never go
 * down, since every request gets the same delay and the stall end) under an absolute timerfd (ns,
 * not epoll_wait's ms).
 *
 * It binds 127.0.0.1:0, prints "PORT <n>", serves until its stdin ends (the parent holds the other
 * end: it never outlives the benchmark), then prints "STATS <requests> <held> <late_p50_us>
 * <late_p99_us> <late_max_us> <late_mean_us>": how late the held answers were written past their
 * due time (1 us buckets up to 100 ms). */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_FD 65536
#define OUT_CAP 16384
#define RING 65536
#define TIMER_TAG -2
#define LATE_BUCKETS 100000 /* us */

static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
#define RESPONSE_LEN (sizeof(RESPONSE) - 1)

typedef struct {
    unsigned gen;   /* bumped on close, so a held answer never goes to a reused fd */
    int match;      /* how much of CRLF CRLF the last bytes read matched */
    int writing;    /* EPOLLOUT registered */
    size_t out_len;
    char *out;
} conn_t;

typedef struct {
    int fd;
    unsigned gen;
    unsigned count;
    int64_t due; /* ns, CLOCK_MONOTONIC */
} held_t;

static conn_t conns[MAX_FD];
static held_t ring[RING];
static size_t ring_head, ring_len;
static int ep, timer_fd;
static int64_t delay_ns, period_ns, stall_ns, t0;
static uint64_t requests, held, late_sum_ns;
static int64_t late_max_ns;
static uint64_t late_hist[LATE_BUCKETS];

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void drop(int fd) {
    conn_t *c = &conns[fd];
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    c->gen++;
    c->match = 0;
    c->writing = 0;
    c->out_len = 0;
}

static void flush(int fd) {
    conn_t *c = &conns[fd];
    size_t done = 0;
    while (done < c->out_len) {
        ssize_t n = send(fd, c->out + done, c->out_len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            drop(fd);
            return;
        }
    }
    memmove(c->out, c->out + done, c->out_len - done);
    c->out_len -= done;
    int want = c->out_len > 0;
    if (want != c->writing) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        c->writing = want;
    }
}

static void answer(int fd, unsigned count) {
    conn_t *c = &conns[fd];
    if (c->out == NULL && (c->out = malloc(OUT_CAP)) == NULL) {
        drop(fd);
        return;
    }
    for (unsigned i = 0; i < count; i++) {
        if (c->out_len + RESPONSE_LEN > OUT_CAP) { /* a client that never reads: let it go */
            drop(fd);
            return;
        }
        memcpy(c->out + c->out_len, RESPONSE, RESPONSE_LEN);
        c->out_len += RESPONSE_LEN;
    }
    flush(fd);
}

static int64_t due_of(int64_t now) {
    int64_t due = now + delay_ns;
    if (period_ns > 0) {
        int64_t phase = (now - t0) % period_ns;
        if (phase >= period_ns - stall_ns) {
            int64_t end = now - phase + period_ns;
            if (end > due) due = end;
        }
    }
    return due;
}

static void arm(void) {
    struct itimerspec spec = {0};
    if (ring_len > 0) {
        int64_t due = ring[ring_head].due;
        spec.it_value.tv_sec = due / 1000000000;
        spec.it_value.tv_nsec = due % 1000000000;
    }
    timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

static void release(void) {
    int64_t now = now_ns();
    while (ring_len > 0 && ring[ring_head].due <= now) {
        held_t *h = &ring[ring_head];
        ring_head = (ring_head + 1) % RING;
        ring_len--;
        int64_t late = now - h->due;
        late_sum_ns += (uint64_t)late * h->count;
        if (late > late_max_ns) late_max_ns = late;
        late_hist[late / 1000 < LATE_BUCKETS ? late / 1000 : LATE_BUCKETS - 1] += h->count;
        held += h->count;
        if (conns[h->fd].gen == h->gen) answer(h->fd, h->count);
        now = now_ns();
    }
    arm();
}

static long long late_percentile(int p) {
    uint64_t seen = 0;
    for (int us = 0; us < LATE_BUCKETS; us++) {
        seen += late_hist[us];
        if (held > 0 && seen * 100 >= held * (uint64_t)p) return us;
    }
    return 0;
}

static void on_read(int fd) {
    static char buf[65536];
    conn_t *c = &conns[fd];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        drop(fd);
        return;
    }
    unsigned count = 0;
    int m = c->match;
    for (ssize_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (ch == '\r') m = (m == 2) ? 3 : 1;
        else if (ch == '\n' && (m == 1 || m == 3)) m++;
        else m = 0;
        if (m == 4) {
            count++;
            m = 0;
        }
    }
    c->match = m;
    if (count == 0) return;
    requests += count;
    int64_t now = now_ns();
    int64_t due = (delay_ns > 0 || period_ns > 0) ? due_of(now) : now;
    if (due <= now && ring_len == 0) {
        answer(fd, count);
        return;
    }
    if (ring_len == RING) { /* more held than the ring holds: answer late rather than never */
        release();
        if (ring_len == RING) {
            answer(fd, count);
            return;
        }
    }
    ring[(ring_head + ring_len) % RING] = (held_t){fd, c->gen, count, due};
    if (++ring_len == 1) arm();
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s DELAY_US STALL_PERIOD_US STALL_LENGTH_US\n", argv[0]);
        return 2;
    }
    delay_ns = atoll(argv[1]) * 1000;
    period_ns = atoll(argv[2]) * 1000;
    stall_ns = atoll(argv[3]) * 1000;
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 4096) ||
        getsockname(lfd, (struct sockaddr *)&addr, &len)) {
        perror("listen");
        return 1;
    }
    ep = epoll_create1(0);
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.fd = 0;
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    ev.data.fd = TIMER_TAG;
    epoll_ctl(ep, EPOLL_CTL_ADD, timer_fd, &ev);
    t0 = now_ns();
    printf("PORT %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    struct epoll_event events[512];
    for (;;) {
        int n = epoll_wait(ep, events, 512, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (cfd >= MAX_FD) {
                        close(cfd);
                        continue;
                    }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                }
            } else if (fd == 0) {
                char sink[256];
                if (read(0, sink, sizeof sink) <= 0) goto done;
            } else if (fd == TIMER_TAG) {
                uint64_t ticks;
                if (read(timer_fd, &ticks, sizeof ticks) < 0 && errno != EAGAIN) perror("timerfd");
                release();
            } else {
                if (events[i].events & EPOLLOUT) flush(fd);
                if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_read(fd);
            }
        }
        if (ring_len > 0 && ring[ring_head].due <= now_ns()) release();
    }
done:
    printf("STATS %llu %llu %lld %lld %lld %lld\n", (unsigned long long)requests,
           (unsigned long long)held, late_percentile(50), late_percentile(99),
           (long long)(late_max_ns / 1000), (long long)(held ? late_sum_ns / held / 1000 : 0));
    fflush(stdout);
    return 0;
}
