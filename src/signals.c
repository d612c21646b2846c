// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "signals.h"

volatile sig_atomic_t tf_exiting;
volatile sig_atomic_t tf_reload;
static void (*volatile abort_fn)(void);
static volatile sig_atomic_t hup_reloads;

/*
 * Signals whose default action ends the process and that someone else
 * sends (a terminal, ssh, a supervisor, kill). Faults (SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL, SIGTRAP, SIGSYS) and SIGABRT keep their default: after
 * one of those nothing is safe to run, and the next start cleans up.
 * SIGKILL and SIGSTOP cannot be caught.
 */
static const int terminating[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM,
	SIGPROF, SIGXCPU, SIGXFSZ, SIGIO, SIGPWR, SIGSTKFLT,
};

static void on_signal(int sig)
{
	if (sig == SIGHUP && hup_reloads) {
		tf_reload = 1;
		return;
	}
	if (tf_exiting) {
		if (abort_fn)
			abort_fn();
		_exit(128 + sig);
	}
	tf_exiting = 1;
}

void tf_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	/*
	 * A report being written when the signal comes (a pipe full, its
	 * reader slow) goes on: without SA_RESTART its write() fails with
	 * EINTR and the run ends as if stdout had failed. The waits the loops
	 * wake from (poll, epoll_wait, nanosleep) return EINTR all the same.
	 */
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(terminating) / sizeof(terminating[0]); i++)
		sigaction(terminating[i], &sa, NULL);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaction(sig, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void tf_signals_hup_reloads(void)
{
	hup_reloads = 1;
}

void tf_signals_on_abort(void (*fn)(void))
{
	abort_fn = fn;
}

void tf_sleep(double sec)
{
	struct timespec ts;

	if (sec <= 0 || tf_exiting)
		return;
	ts.tv_sec = (time_t)sec;
	ts.tv_nsec = (long)((sec - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);	/* EINTR: a signal, the caller checks tf_exiting */
}
