/* SPDX-License-Identifier: GPL-2.0 */
/*
 * capture --flow: "PROTO [ENDPOINT [ENDPOINT]]", matched in the kernel
 * either way round. PROTO: tcp, udp, icmp, icmpv6, any or a number;
 * ENDPOINT: 10.0.0.1, 10.0.0.1:53, [fd00::1]:53, fd00::1, *:53 or *.
 * Examples: "udp 192.168.122.10:40000 10.99.0.2:7", "tcp *:80", "icmp".
 */
#ifndef TF_CAPFILTER_H
#define TF_CAPFILTER_H

#include <stddef.h>
#include <linux/types.h>

#include "tapflow.h"

/* 0, or -1 with a one-line reason in err. */
int tf_cap_filter_parse(const char *spec, struct tf_cap_filter *out, char *err, size_t errlen);

#endif /* TF_CAPFILTER_H */
