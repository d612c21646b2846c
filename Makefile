# SPDX-License-Identifier: GPL-2.0
# tapflow: one command builds everything into .output/ (V=1 shows commands).
#   make            build .output/tapflow
#   make check      install missing deps, build, run every test
#   make fuzz       libFuzzer harnesses of the XML parsers and name output
#   make demo       install missing deps, build, start the lab, live per-VM stats
#   make bench      ns/packet and throughput ratios, tapflow on vs off
#   make vmlinux    regenerate vmlinux/<arch>/vmlinux.h from the running kernel
#   make install    binary, agent unit, man page, example config (PREFIX, DESTDIR)
#   make uninstall  what make install put there (a changed agent.conf stays)

OUTPUT    := .output
CLANG     ?= clang
CC        ?= gcc
BPFTOOL   ?= bpftool
ARCH      := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
VMLINUX   := vmlinux/$(ARCH)/vmlinux.h

PKGS      := libbpf libvirt libxml-2.0 libelf zlib ncursesw libmicrohttpd libsystemd libfixbuf
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN      := -Wall -Wextra -Werror
CFLAGS    ?= -O2 -g
ALL_CFLAGS := $(CFLAGS) $(WARN) -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc \
	      -I$(OUTPUT) $(PKG_CFLAGS) -MMD -MP
# -mcpu=v3: BPF atomics beyond add (the flow map ORs TCP flags; kernel 5.12+).
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) $(WARN) \
	      -Iinclude -Ibpf -I$(dir $(VMLINUX))
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	     -fno-sanitize-recover=undefined

# make install: the usual PREFIX and DESTDIR. The unit lands where systemd
# looks for it under PREFIX (/usr/local/lib/systemd/system is searched too);
# its config stays in /etc, which is what a unit under /usr/local reads.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/tapflow
SYSCONFDIR ?= /etc
INSTALL    ?= install
# The doc directory gets the config example and what goes with the agent.
DOC_FILES  := contrib/agent.conf contrib/prometheus/prometheus.yml \
	      contrib/prometheus/tapflow.rules.yml contrib/prometheus/tapflow.rules.test.yml \
	      contrib/grafana/tapflow.json

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(OUTPUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))

SRCS      := $(wildcard src/*.c)
OBJS      := $(patsubst src/%.c,$(OUTPUT)/obj/%.o,$(SRCS))
LIB_OBJS  := $(filter-out $(OUTPUT)/obj/main.o,$(OBJS))
SAN_OBJS  := $(patsubst src/%.c,$(OUTPUT)/san/%.o,$(SRCS))
SAN_LIB_OBJS := $(filter-out $(OUTPUT)/san/main.o,$(SAN_OBJS))

# Unit and BPF tests: each tests/{unit,bpf}/test_*.c is one cmocka binary,
# linked against every module but main.c and built with ASan/UBSan.
TEST_SRCS := $(wildcard tests/unit/test_*.c tests/bpf/test_*.c)
TEST_BINS := $(patsubst tests/%.c,$(OUTPUT)/tests/%,$(TEST_SRCS))

# Fuzzers: each tests/fuzz/fuzz_*.c is one libFuzzer binary, linked with the
# modules it drives; clang instruments them for coverage and ASan/UBSan.
# libFuzzer comes with clang's compiler-rt (Debian: libclang-rt-dev); without
# it `make fuzz` says so and builds nothing, and the fuzz suite skips.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/%.c,$(OUTPUT)/%,$(FUZZ_SRCS))
FUZZ_OBJS := $(OUTPUT)/fuzz/obj/domxml.o $(OUTPUT)/fuzz/obj/output.o $(OUTPUT)/fuzz/obj/log.o
FUZZ_CFLAGS := $(ALL_CFLAGS) $(SAN_FLAGS) -O1
FUZZ_LIBS := $(shell pkg-config --libs libxml-2.0 libbpf 2>/dev/null)
# Probed only when fuzz is a goal: every other make stays as fast as it was.
ifneq ($(filter fuzz,$(MAKECMDGOALS)),)
HAVE_LIBFUZZER := $(shell mkdir -p $(OUTPUT)/fuzz/obj && \
	printf 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' | \
	$(CLANG) -fsanitize=fuzzer -x c - -o $(OUTPUT)/fuzz/obj/probe 2>/dev/null && echo y; \
	rm -f $(OUTPUT)/fuzz/obj/probe)
endif

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
# Keep the BPF objects: the bench and BPF tests load them directly.
.SECONDARY: $(BPF_OBJS)
.PHONY: all bench clean check demo deps fuzz install tests uninstall vmlinux

all: $(OUTPUT)/tapflow $(OUTPUT)/tapflow-asan

tests: $(TEST_BINS)

ifeq ($(HAVE_LIBFUZZER),y)
fuzz: $(FUZZ_BINS)
else
fuzz:
	@echo "  SKIP     fuzz: $(CLANG) cannot link -fsanitize=fuzzer" \
	      "(no libFuzzer runtime: tools/deps.sh installs libclang-rt-dev)"
endif

$(OUTPUT) $(OUTPUT)/bpf $(OUTPUT)/obj $(OUTPUT)/san $(OUTPUT)/tests/unit $(OUTPUT)/tests/bpf \
$(OUTPUT)/fuzz/obj:
	$(Q)mkdir -p $@

$(OUTPUT)/bpf/%.bpf.o: bpf/%.bpf.c $(VMLINUX) | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MMD -MP -MT $@ -MF $@.d -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(OUTPUT)/%.skel.h: $(OUTPUT)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# Every userspace object may include a skeleton: generate them first.
$(OUTPUT)/obj/%.o: src/%.c $(SKELS) | $(OUTPUT)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(OUTPUT)/san/%.o: src/%.c $(SKELS) | $(OUTPUT)/san
	$(call msg,CC-SAN,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -O1 -c $< -o $@

$(OUTPUT)/tapflow: $(OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(PKG_LIBS) -o $@

# Every module but main.c, for tools/bench programs that drive tapflow's own
# collector and drop tracer.
$(OUTPUT)/libtapflow.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# The same binary under ASan/UBSan: the netns tests run it too.
$(OUTPUT)/tapflow-asan: $(SAN_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) $^ $(PKG_LIBS) -o $@

$(OUTPUT)/tests/%: tests/%.c $(SAN_LIB_OBJS) | $(OUTPUT)/tests/unit $(OUTPUT)/tests/bpf
	$(call msg,TEST-CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -O1 -Itests $< $(SAN_LIB_OBJS) \
		$(PKG_LIBS) -lcmocka -o $@

$(OUTPUT)/fuzz/obj/%.o: src/%.c | $(OUTPUT)/fuzz/obj
	$(call msg,CC-FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BINS): $(OUTPUT)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS) | $(OUTPUT)/fuzz/obj
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz $< $(FUZZ_OBJS) \
		$(FUZZ_LIBS) -o $@

vmlinux:
	$(Q)tools/gen-vmlinux.sh

deps:
	$(Q)tools/deps.sh

check: deps
	$(Q)$(MAKE) --no-print-directory all tests fuzz
	$(Q)tests/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/lab/demo.sh

# ns/packet of the programs, throughput with stats/flows on vs off, flows at
# scale, the NAT join, the drop tracer, capture next to tcpdump; as root,
# about 20 minutes; see tools/bench/README.md.
bench: deps
	$(Q)$(MAKE) --no-print-directory -C tools/bench run

# The unit names the binary and the config by path: rewritten to these.
# It reads the config, so one is put there too, but never over an old one.
install: $(OUTPUT)/tapflow
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/tapflow
	$(Q)$(INSTALL) -m 0755 $(OUTPUT)/tapflow $(DESTDIR)$(SBINDIR)/tapflow
	$(Q)sed -e 's|/usr/local/sbin/tapflow|$(SBINDIR)/tapflow|' \
		-e 's|/etc/tapflow/agent.conf|$(SYSCONFDIR)/tapflow/agent.conf|' \
		contrib/systemd/tapflow-agent.service > $(OUTPUT)/tapflow-agent.service
	$(Q)$(INSTALL) -m 0644 $(OUTPUT)/tapflow-agent.service $(DESTDIR)$(UNITDIR)/tapflow-agent.service
	$(Q)$(INSTALL) -m 0644 man/tapflow.8 $(DESTDIR)$(MANDIR)/man8/tapflow.8
	$(Q)$(INSTALL) -m 0644 $(DOC_FILES) $(DESTDIR)$(DOCDIR)/
	$(Q)[ -e $(DESTDIR)$(SYSCONFDIR)/tapflow/agent.conf ] || \
		$(INSTALL) -m 0644 contrib/agent.conf $(DESTDIR)$(SYSCONFDIR)/tapflow/agent.conf

# agent.conf goes only if it is still the example; its directory if empty.
uninstall:
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/tapflow $(DESTDIR)$(UNITDIR)/tapflow-agent.service \
		$(DESTDIR)$(MANDIR)/man8/tapflow.8 \
		$(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOC_FILES)))
	$(Q)rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	$(Q)! cmp -s contrib/agent.conf $(DESTDIR)$(SYSCONFDIR)/tapflow/agent.conf || \
		rm -f $(DESTDIR)$(SYSCONFDIR)/tapflow/agent.conf
	$(Q)rmdir $(DESTDIR)$(SYSCONFDIR)/tapflow 2>/dev/null || true

clean:
	$(call msg,CLEAN,$(OUTPUT))
	$(Q)rm -rf $(OUTPUT)

-include $(wildcard $(OUTPUT)/obj/*.d $(OUTPUT)/san/*.d $(OUTPUT)/bpf/*.d $(OUTPUT)/tests/*/*.d \
		    $(OUTPUT)/fuzz/*.d $(OUTPUT)/fuzz/obj/*.d)
