/* Test harness: small helpers shared by every module's Check suite.
 *
 * Never linked into a product. It gives tests:
 *  - a runner entry point (th_main) that runs Check suites in fork mode and
 *    lets the same binary be re-executed as a named child process;
 *  - temporary directories that are removed on every exit path;
 *  - deadline-based waiting (wait until a condition holds or time runs out);
 *  - spawning N child processes and collecting their exit statuses within a
 *    timeout, killing whatever is left;
 *  - free TCP ports on loopback.
 *
 * Threading: the helpers keep no global mutable state except the temporary
 * root published by th_main in the environment; each struct th_procs is used
 * by one thread.
 */
#ifndef DERECHO_TEST_HARNESS_H
#define DERECHO_TEST_HARNESS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A function the test binary can run as a separate process:
 * `test-binary --child NAME args...` calls main(argc, argv) with argv[0] =
 * NAME; its return value is the process's exit status. */
struct th_child {
    const char *name;
    int (*main)(int argc, char **argv);
};

/* Runs the suites made by `suites` (a NULL-terminated array of factories) in
 * Check's fork mode, or one child when argv[1] is "--child".  Creates the
 * temporary root that th_tmpdir() uses and removes it when the run ends, also
 * on SIGTERM/SIGINT (meson's timeout).  Returns the process exit status. */
int th_main(int argc, char **argv, Suite *(*const suites[])(void),
            const struct th_child *children);

/* ---- time and waiting -------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds / milliseconds. */
int64_t th_now_ns(void);
int64_t th_now_ms(void);

/* Polls cond(arg) with a short back-off (50 us growing to 5 ms) until it
 * returns true (returns true) or timeout_ms elapse (returns false). */
bool th_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms);

/* One pause of a polling loop: sleeps *backoff_us microseconds, then
 * doubles it up to 5 ms.  Start with *backoff_us = 0 (50 us is used). */
void th_backoff(long *backoff_us);

/* Evaluates expr (any scalar expression, re-evaluated on every poll) until
 * it is true or ms milliseconds have passed; the value is true when expr
 * held (it is evaluated once more at the deadline).  The same back-off as
 * th_wait_until, without a callback:
 *     ck_assert(TH_WAIT_UNTIL(atomic_load(&done) == 3, 5000));
 * A GNU statement expression (gcc, clang). */
#define TH_WAIT_UNTIL(expr, ms)                                                \
    __extension__({                                                            \
        int64_t th__deadline = th_now_ms() + (ms);                             \
        long th__backoff = 0;                                                  \
        bool th__ok;                                                           \
        for (;;) {                                                             \
            if ((expr)) {                                                      \
                th__ok = true;                                                 \
                break;                                                         \
            }                                                                  \
            if (th_now_ms() >= th__deadline) {                                 \
                th__ok = (expr) ? true : false;                                \
                break;                                                         \
            }                                                                  \
            th_backoff(&th__backoff);                                          \
        }                                                                      \
        th__ok;                                                                \
    })

/* ---- temporary directories --------------------------------------------- */

/* Creates a fresh empty directory under the run's temporary root and writes
 * its path (NUL-terminated) into buf.  The directory is removed when the
 * process that created it exits normally, and the whole root is removed by
 * th_main when the run ends, whatever happened to the test.
 * Returns 0 or a negative errno (-ENAMETOOLONG when buf is too small). */
int th_tmpdir(char *buf, size_t len);

/* Removes a directory tree (like rm -rf).  Returns 0 or a negative errno;
 * a missing path is not an error. */
int th_rmtree(const char *path);

/* ---- child processes ---------------------------------------------------- */

#define TH_MAX_PROCS 64

/* A set of spawned processes.  Initialise with th_procs_init(). */
struct th_procs {
    int count;
    pid_t pid[TH_MAX_PROCS];
    int status[TH_MAX_PROCS]; /* raw wait status, valid when reaped[i] */
    bool reaped[TH_MAX_PROCS];
};

void th_procs_init(struct th_procs *procs);

/* Spawns the running test binary as child NAME (see struct th_child) with
 * the NULL-terminated argument list args (may be NULL).  The child is
 * killed if the spawning process dies.  Returns the child's index in procs
 * or a negative errno (-ENOSPC when TH_MAX_PROCS are already in use). */
int th_spawn_child(struct th_procs *procs, const char *name,
                   const char *const args[]);

/* Spawns the executable at path with argv (argv[0] included, NULL-
 * terminated).  Same rules as th_spawn_child. */
int th_spawn_exec(struct th_procs *procs, const char *path,
                  const char *const argv[]);

/* Sends sig to child i if it has not been reaped.  Returns 0 or -errno. */
int th_signal(struct th_procs *procs, int i, int sig);

/* Waits for child i to exit within timeout_ms.  Returns 0 when reaped (its
 * status is in procs->status[i]) or -ETIMEDOUT. */
int th_wait_one(struct th_procs *procs, int i, int timeout_ms);

/* Waits for every child to exit within timeout_ms (one deadline for all).
 * On time-out, kills the leftovers with SIGKILL, reaps them and returns
 * -ETIMEDOUT; otherwise 0.  Statuses are in procs->status. */
int th_wait_all(struct th_procs *procs, int timeout_ms);

/* True when child i was reaped after exiting normally with status 0. */
bool th_exited_ok(const struct th_procs *procs, int i);

/* Kills (SIGKILL) and reaps every child still running. */
void th_procs_kill_all(struct th_procs *procs);

/* ---- leaks ------------------------------------------------------------- */

/* Open file descriptors / threads of the calling process right now (from
 * /proc/self), for leak checks as a difference around create/destroy.
 * -1 when /proc is not readable. */
int th_count_fds(void);
int th_count_threads(void);

/* ---- the options-size contract (STYLE.md "Options structs") ------------ */

/* How a suite's misuse test reaches one library's options struct. */
struct th_options_case {
    size_t struct_size; /* sizeof the options struct of this header */
    /* Fills valid options at opts (struct_size bytes writable) and sets
     * their size field to size. */
    void (*fill)(void *opts, size_t size, void *ctx);
    /* Calls the library with opts: returns its result (0 accepted; the
     * callback checks and frees what was made, and that nothing was made
     * on failure). */
    int (*try_use)(void *opts, void *ctx);
    void *ctx;
};

/* Checks, with ck_assert: each of the n bad_sizes is refused with
 * -EINVAL; the struct at the start of a larger buffer whose extra bytes
 * are zero, size covering the buffer (a caller built with a newer
 * header), is accepted; the same with one extra byte not zero is refused
 * with -EINVAL. */
void th_check_options_sizes(const struct th_options_case *c,
                            const size_t *bad_sizes, size_t n);

/* ---- network ----------------------------------------------------------- */

/* Finds n distinct TCP ports that are free on 127.0.0.1 at the time of the
 * call (all n are held bound together while they are picked, so they are
 * distinct).  They are taken at random from 20000 up to the start of the
 * kernel's ephemeral range, so no outgoing connection can grab one before
 * the test binds it (port 0 is the fall-back when that window is small).
 * Returns 0 or a negative errno. */
int th_free_tcp_ports(uint16_t *ports, int n);

#endif
