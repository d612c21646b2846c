/* SPDX-License-Identifier: GPL-2.0 */
#ifndef TF_SIGNALS_H
#define TF_SIGNALS_H

#include <signal.h>

/* Set by the first SIGINT/SIGTERM: finish, report, detach, exit 0. */
extern volatile sig_atomic_t tf_exiting;

/*
 * First SIGINT/SIGTERM sets tf_exiting; a second one exits at once (TCX
 * links go with the process; clsact filters are removed by the next start).
 * Installed without SA_RESTART, so a sleep returns early on a signal.
 */
void tf_signals_install(void);
/*
 * fn (async-signal-safe) runs in the handler of the second signal, just
 * before the immediate exit: `top` puts the terminal back there.
 */
void tf_signals_on_abort(void (*fn)(void));
/* Sleep up to sec seconds, less if a signal arrives. */
void tf_sleep(double sec);

#endif /* TF_SIGNALS_H */
