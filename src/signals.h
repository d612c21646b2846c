/* SPDX-License-Identifier: GPL-2.0 */
#ifndef TF_SIGNALS_H
#define TF_SIGNALS_H

#include <signal.h>

/*
 * Set by the first terminating signal: finish, report, detach, exit 0.
 * Any signal whose default action would end the process counts (SIGINT,
 * SIGTERM, SIGHUP of a dropped ssh session, SIGQUIT, SIGUSR1, SIGALRM,
 * real-time signals, ...): dying by default would skip the final report
 * and leave clsact filters behind.
 */
extern volatile sig_atomic_t tf_exiting;

/* Set by SIGHUP after tf_signals_hup_reloads(): reload the config. */
extern volatile sig_atomic_t tf_reload;

/* SIGHUP reloads (the agent) instead of ending the run; before or after install. */
void tf_signals_hup_reloads(void);

/*
 * Install the handlers. A second terminating signal exits at once (TCX
 * links go with the process; clsact filters are removed by the next
 * start). Installed without SA_RESTART, so a sleep returns early on a
 * signal. SIGPIPE is ignored: a reader that goes away shows as EPIPE on
 * the next write, which ends the run through the same path (output.h).
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
