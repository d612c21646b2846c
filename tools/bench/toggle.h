/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What drop_toggle and flow_toggle share: switching something on and off
 * every few hundred ms, printing when each switch took effect, for the
 * benches' switching measurements (lib.sh switched_ratios).
 */
#ifndef TF_BENCH_TOGGLE_H
#define TF_BENCH_TOGGLE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t toggle_stop;

static void toggle_on_signal(int sig)
{
	(void)sig;
	toggle_stop = 1;
}

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Starting off, for secs seconds (or until SIGINT/SIGTERM): switch with
 * set(on, ctx) (0, or -1: a switch failed) every period_ms, counted from
 * the end of the switch before (attaching can take tens of ms), printing
 * "switch <CLOCK_MONOTONIC ns> on|off" as each takes effect; tick(now,
 * ctx) every tick_ms meanwhile. Ends off. The switches made, or -1 if one
 * failed.
 */
static long toggle_run(unsigned long period_ms, unsigned long secs, unsigned long tick_ms,
		       int (*set)(bool on, void *ctx), void (*tick)(uint64_t now, void *ctx),
		       void *ctx)
{
	uint64_t t0 = mono_ns(), next_switch = t0 + period_ms * 1000000ULL, next_tick = t0;
	long switches = 0;
	bool on = false;

	signal(SIGINT, toggle_on_signal);
	signal(SIGTERM, toggle_on_signal);
	printf("switch %llu off\n", (unsigned long long)t0);
	while (!toggle_stop) {
		uint64_t t = mono_ns();

		if (t >= t0 + secs * 1000000000ULL)
			break;
		if (t >= next_tick) {
			tick(t, ctx);
			next_tick += tick_ms * 1000000ULL;
		}
		if (t >= next_switch) {
			if (set(!on, ctx)) {
				set(false, ctx);
				return -1;
			}
			on = !on;
			switches++;
			printf("switch %llu %s\n", (unsigned long long)mono_ns(), on ? "on" : "off");
			next_switch = mono_ns() + period_ms * 1000000ULL;
		}
		usleep(1000);
	}
	if (on)
		set(false, ctx);
	return switches;
}

#endif /* TF_BENCH_TOGGLE_H */
