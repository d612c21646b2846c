#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# udhcpc event script of the lab guests: configure the lease, remember it.
# udhcpc passes interface, ip, mask, router in the environment.
# shellcheck disable=SC2154
case $1 in
deconfig)
	ip addr flush dev "$interface" ;;
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	gw=${router%% *}
	[ -n "$gw" ] && ip route replace default via "$gw" dev "$interface"
	echo "$ip $gw" >/run/lease ;;
esac
exit 0
