// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "vmwatch.h"

#define DEFAULT_URI "qemu:///system"
/* How often the event loop wakes on its own, to see stop. */
#define WAKE_MS 500

static void notify(struct tf_vmwatch *w)
{
	char b = 1;

	/* A full pipe already says "changed": the byte is not needed. */
	if (write(w->pipe[1], &b, 1) < 0 && errno != EAGAIN)
		return;
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
			void *opaque)
{
	(void)conn, (void)dom, (void)event, (void)detail;
	notify(opaque);
	return 0;
}

static void on_reboot(virConnectPtr conn, virDomainPtr dom, void *opaque)
{
	(void)conn, (void)dom;
	notify(opaque);
}

static void on_device(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
	(void)conn, (void)dom, (void)alias;
	notify(opaque);
}

static void on_network(virConnectPtr conn, virNetworkPtr net, int event, int detail,
		       void *opaque)
{
	(void)conn, (void)net, (void)event, (void)detail;
	notify(opaque);
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	struct tf_vmwatch *w = opaque;

	(void)conn, (void)reason;
	w->closed = 1;
	notify(w);
}

static void on_wake(int timer, void *opaque)
{
	(void)timer, (void)opaque;
}

static void *event_loop(void *arg)
{
	struct tf_vmwatch *w = arg;

	while (!w->stop)
		if (virEventRunDefaultImpl() < 0)
			usleep(WAKE_MS * 1000);	/* never spin on a broken loop */
	return NULL;
}

static void quiet_error(void *opaque, virErrorPtr error)
{
	(void)opaque, (void)error;
}

static void disconnect(struct tf_vmwatch *w)
{
	virConnectPtr conn = w->conn;

	if (!conn)
		return;
	for (int i = 0; i < 4; i++)
		if (w->dom_cb[i] >= 0)
			virConnectDomainEventDeregisterAny(conn, w->dom_cb[i]);
	if (w->net_cb >= 0)
		virConnectNetworkEventDeregisterAny(conn, w->net_cb);
	virConnectUnregisterCloseCallback(conn, on_close);
	virConnectClose(conn);
	w->conn = NULL;
	for (int i = 0; i < 4; i++)
		w->dom_cb[i] = -1;
	w->net_cb = -1;
}

static int connect_events(struct tf_vmwatch *w, char *err, size_t errlen)
{
	static const int dom_events[4] = {
		VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_ID_REBOOT,
		VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
	};
	virConnectDomainEventGenericCallback dom_fns[4] = {
		VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), VIR_DOMAIN_EVENT_CALLBACK(on_reboot),
		VIR_DOMAIN_EVENT_CALLBACK(on_device), VIR_DOMAIN_EVENT_CALLBACK(on_device),
	};
	virConnectPtr conn;
	virErrorPtr e;

	virSetErrorFunc(NULL, quiet_error);
	conn = virConnectOpenReadOnly(w->uri[0] ? w->uri : DEFAULT_URI);
	if (!conn) {
		e = virGetLastError();
		snprintf(err, errlen, "%s", e && e->message ? e->message : "cannot connect");
		return -1;
	}
	w->conn = conn;
	w->closed = 0;
	/* A libvirtd that hangs is noticed as one that went away. */
	virConnectSetKeepAlive(conn, 5, 3);
	if (virConnectRegisterCloseCallback(conn, on_close, w, NULL) < 0)
		goto fail;
	for (int i = 0; i < 4; i++) {
		w->dom_cb[i] = virConnectDomainEventRegisterAny(conn, NULL, dom_events[i],
								dom_fns[i], w, NULL);
		if (w->dom_cb[i] < 0)
			goto fail;
	}
	w->net_cb = virConnectNetworkEventRegisterAny(conn, NULL, VIR_NETWORK_EVENT_ID_LIFECYCLE,
						      VIR_NETWORK_EVENT_CALLBACK(on_network),
						      w, NULL);
	if (w->net_cb < 0)
		goto fail;
	return 0;
fail:
	e = virGetLastError();
	snprintf(err, errlen, "cannot register for libvirt events: %s",
		 e && e->message ? e->message : "unknown error");
	disconnect(w);
	return -1;
}

int tf_vmwatch_open(struct tf_vmwatch *w, const char *uri, char *err, size_t errlen)
{
	static bool registered;

	memset(w, 0, sizeof(*w));
	w->pipe[0] = w->pipe[1] = -1;
	w->wake_timer = w->net_cb = -1;
	for (int i = 0; i < 4; i++)
		w->dom_cb[i] = -1;
	snprintf(w->uri, sizeof(w->uri), "%s", uri ? uri : "");
	if (pipe2(w->pipe, O_NONBLOCK | O_CLOEXEC)) {
		snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
		return -1;
	}
	/* libvirt takes one event implementation per process, before any connection. */
	if (!registered && virEventRegisterDefaultImpl() < 0) {
		snprintf(err, errlen, "cannot start libvirt's event loop");
		goto fail;
	}
	registered = true;
	w->wake_timer = virEventAddTimeout(WAKE_MS, on_wake, w, NULL);
	if (w->wake_timer < 0) {
		snprintf(err, errlen, "cannot start libvirt's event loop");
		goto fail;
	}
	if (pthread_create(&w->thread, NULL, event_loop, w)) {
		snprintf(err, errlen, "cannot start the libvirt event thread");
		goto fail;
	}
	w->thread_on = true;
	connect_events(w, err, errlen);
	return 0;
fail:
	tf_vmwatch_close(w);
	return -1;
}

int tf_vmwatch_fd(const struct tf_vmwatch *w)
{
	return w->pipe[0];
}

int tf_vmwatch_drain(struct tf_vmwatch *w)
{
	char buf[256];
	int n = 0;
	ssize_t r;

	while (w->pipe[0] >= 0 && (r = read(w->pipe[0], buf, sizeof(buf))) > 0)
		n += (int)r;
	return n;
}

bool tf_vmwatch_connected(const struct tf_vmwatch *w)
{
	return w->conn && !w->closed;
}

int tf_vmwatch_reconnect(struct tf_vmwatch *w, char *err, size_t errlen)
{
	disconnect(w);
	return connect_events(w, err, errlen);
}

void tf_vmwatch_close(struct tf_vmwatch *w)
{
	disconnect(w);
	if (w->thread_on) {
		w->stop = 1;
		virEventUpdateTimeout(w->wake_timer, 0);
		pthread_join(w->thread, NULL);
		w->thread_on = false;
	}
	if (w->wake_timer >= 0)
		virEventRemoveTimeout(w->wake_timer);
	w->wake_timer = -1;
	for (int i = 0; i < 2; i++)
		if (w->pipe[i] >= 0)
			close(w->pipe[i]);
	w->pipe[0] = w->pipe[1] = -1;
}
