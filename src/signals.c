// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "signals.h"

volatile sig_atomic_t tf_exiting;
static void (*volatile abort_fn)(void);

static void on_signal(int sig)
{
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
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A closed pipe (tapflow ... | head) ends us through EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
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
