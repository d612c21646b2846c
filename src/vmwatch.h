/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VM watcher: libvirt's domain events (lifecycle, reboot, device added
 * or removed) and network lifecycle events on a connection of its own,
 * with libvirt's event loop on a thread of its own. Like the link watcher
 * it only says that something changed (a byte on a pipe the run polls);
 * the session then reads the inventory again. The connection's close
 * (libvirtd stopped or restarted) is reported too; reconnecting is the
 * caller's, with backoff, from its own thread.
 */
#ifndef TF_VMWATCH_H
#define TF_VMWATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct tf_vmwatch {
	int pipe[2];		/* the event thread writes, the run reads; -1: none */
	pthread_t thread;
	bool thread_on;
	volatile int stop;	/* the event thread ends at its next wakeup */
	int wake_timer;		/* a libvirt timeout that wakes the loop; -1: none */
	void *conn;		/* virConnectPtr, NULL while disconnected */
	int dom_cb[4], net_cb;	/* registrations on conn; -1: none */
	volatile int closed;	/* set by the close callback */
	char uri[512];
};

/*
 * Start the event thread and connect to uri (NULL: qemu:///system). A
 * failed connection is not an error (the run retries): 0, or -1 with a
 * reason in err if the thread or pipe cannot be made.
 */
int tf_vmwatch_open(struct tf_vmwatch *w, const char *uri, char *err, size_t errlen);
/* The fd to poll for POLLIN. */
int tf_vmwatch_fd(const struct tf_vmwatch *w);
/* Events queued since the last call (0: none). */
int tf_vmwatch_drain(struct tf_vmwatch *w);
/* Connected, and the connection has not closed since. */
bool tf_vmwatch_connected(const struct tf_vmwatch *w);
/* Drop a closed connection and try a new one. 0, or -1 with a reason in err. */
int tf_vmwatch_reconnect(struct tf_vmwatch *w, char *err, size_t errlen);
void tf_vmwatch_close(struct tf_vmwatch *w);

#endif /* TF_VMWATCH_H */
