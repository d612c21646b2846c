/* SPDX-License-Identifier: GPL-2.0 */
/* What must hold before BPF programs can be loaded and attached. */
#ifndef TF_PREFLIGHT_H
#define TF_PREFLIGHT_H

#include <stddef.h>

/* Enter network namespace NAME (/run/netns/NAME). 0, or -1 with reason. */
int tf_enter_netns(const char *name, char *err, size_t errlen);
/* CAP_BPF (or CAP_SYS_ADMIN) and CAP_NET_ADMIN. 0, or -1 with reason. */
int tf_check_privileges(char *err, size_t errlen);
/* Kernel BTF, needed by the CO-RE programs. 0, or -1 with reason. */
int tf_check_btf(char *err, size_t errlen);

#endif /* TF_PREFLIGHT_H */
