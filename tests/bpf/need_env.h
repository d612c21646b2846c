/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The BPF tests' skip: a test file sets skip_reason (its own static
 * buffer) in its group setup when the machine cannot run it (no BPF, no
 * root), and every test starts with NEED_ENV(), which then skips with
 * that reason instead of failing.
 */
#ifndef TF_TEST_NEED_ENV_H
#define TF_TEST_NEED_ENV_H

#define NEED_ENV()                                                        \
	do {                                                              \
		if (skip_reason[0]) {                                     \
			print_message("# SKIP: %s\n", skip_reason);       \
			skip();                                           \
		}                                                         \
	} while (0)

#endif
