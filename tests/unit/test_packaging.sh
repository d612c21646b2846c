#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Packaging: `make install` into a scratch DESTDIR with PREFIX=/usr, then
# every installed piece checked by the tool its users will read it with:
# the unit by systemd-analyze verify, the man page by groff, the Prometheus
# config and rules by promtool (and vmalert), the dashboard by jq and its
# queries by both; `make uninstall` leaves nothing but a changed config.
# Nothing is started: no systemd, no agent, no server.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d "/tmp/tft$TF_ID-pkg.XXXXXX")
tf_on_exit "rm -rf $TMP"
D=$TMP/root
DOC=$D/usr/share/doc/tapflow
UNIT=$D/usr/lib/systemd/system/tapflow-agent.service
MAN=$D/usr/share/man/man8/tapflow.8

have() { command -v "$1" >/dev/null; }

# tf_run NAME CMD...: ok if CMD succeeds; its output only if it fails.
tf_run() {
	local name=$1
	shift
	if "$@" >"$TMP/run.out" 2>&1; then tf_ok "$name"
	else tf_fail "$name" "$(head -20 "$TMP/run.out")"; fi
}

# ---- make install ------------------------------------------------------------

if ! make -s -C "$REPO" install DESTDIR="$D" PREFIX=/usr >"$TMP/install.log" 2>&1; then
	tf_fail "make install" "$(tail -5 "$TMP/install.log")"
	tf_finish
fi
tf_ok "make install DESTDIR PREFIX=/usr"

# mode path...: each exists as a regular file with that mode.
check_files() {
	local mode=$1 f bad=
	shift
	for f in "$@"; do
		[ -f "$D$f" ] && [ "$(stat -c %a "$D$f")" = "$mode" ] || bad+=" $f"
	done
	if [ -z "$bad" ]; then tf_ok "installed, mode $mode: $*"
	else tf_fail "installed, mode $mode" "missing or another mode:$bad"; fi
}
check_files 755 /usr/sbin/tapflow
check_files 644 /usr/lib/systemd/system/tapflow-agent.service /usr/share/man/man8/tapflow.8 \
	/etc/tapflow/agent.conf /usr/share/doc/tapflow/agent.conf \
	/usr/share/doc/tapflow/prometheus.yml /usr/share/doc/tapflow/tapflow.rules.yml \
	/usr/share/doc/tapflow/tapflow.rules.test.yml /usr/share/doc/tapflow/tapflow.json
tf_check "nothing under /usr/local with PREFIX=/usr" test ! -e "$D/usr/local"
tf_check "the installed binary runs" \
	grep -q '^tapflow [0-9]' <("$D/usr/sbin/tapflow" --version 2>&1)

# ---- the systemd unit ----------------------------------------------------------

tf_eq "unit: ExecStart is PREFIX's binary, with the pin dir and the config" \
	"ExecStart=/usr/sbin/tapflow agent --pin /sys/fs/bpf/tapflow --config /etc/tapflow/agent.conf" \
	"$(grep '^ExecStart=' "$UNIT")"
tf_eq "unit: nothing of the default PREFIX left" "" "$(grep -n '/usr/local' "$UNIT")"
# The promises docs/agent-deploy.md makes about the unit, one by one.
for line in Type=notify 'ExecReload=kill -HUP $MAINPID' Restart=on-failure \
	'CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYSLOG' \
	'AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYSLOG' \
	NoNewPrivileges=yes ProtectSystem=strict ReadWritePaths=-/sys/fs/bpf/tapflow \
	ProtectHome=yes PrivateTmp=yes \
	'RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6' \
	'SystemCallFilter=@system-service bpf' SystemCallArchitectures=native; do
	tf_check "unit: $line" grep -qxF -- "$line" "$UNIT"
done
# A capability only ever granted on purpose: one per line above, no other.
tf_eq "unit: no other capability anywhere" "" \
	"$(grep -v '^#' "$UNIT" | grep -oE 'CAP_[A-Z_]+' | grep -vxE 'CAP_(BPF|PERFMON|NET_ADMIN|SYSLOG)' | sort -u)"

# verify needs ExecStart's binary to exist: a copy of the installed unit
# pointing into DESTDIR (--root would also move every unit it depends on
# and the mkdir and kill it runs). MANPATH lets it find man:tapflow(8) in
# DESTDIR too.
verify() {
	MANPATH=$D/usr/share/man SYSTEMD_LOG_COLOR=0 systemd-analyze verify "$1" >"$TMP/verify.out" 2>&1
}
if have systemd-analyze; then
	mkdir -p "$TMP/verify"
	sed "s|^ExecStart=/usr/sbin/tapflow |ExecStart=$D/usr/sbin/tapflow |" "$UNIT" \
		>"$TMP/verify/tapflow-agent.service"
	if verify "$TMP/verify/tapflow-agent.service" && [ ! -s "$TMP/verify.out" ]; then
		tf_ok "systemd-analyze verify: no error, no warning, man page found"
	else
		tf_fail "systemd-analyze verify" "$(head -5 "$TMP/verify.out")"
	fi
	# The same check must catch a broken unit, else it proves nothing: a
	# directive systemd does not know (a warning), a binary that is not
	# there (an error).
	mkdir -p "$TMP/broken"
	sed 's/^ProtectHome=yes/&\nProtectEverything=yes/' "$TMP/verify/tapflow-agent.service" \
		>"$TMP/broken/tapflow-agent.service"
	verify "$TMP/broken/tapflow-agent.service"
	tf_check "systemd-analyze verify warns of an unknown directive" \
		grep -q "Unknown key 'ProtectEverything'" "$TMP/verify.out"
	sed "s|^ExecStart=$D/usr/sbin/|ExecStart=$TMP/nowhere/|" "$TMP/verify/tapflow-agent.service" \
		>"$TMP/broken/tapflow-agent.service"
	if verify "$TMP/broken/tapflow-agent.service"; then
		tf_fail "systemd-analyze verify fails on a missing binary" "it passed"
	else
		tf_ok "systemd-analyze verify fails on a missing binary"
	fi
else
	tf_skip "systemd-analyze verify" "needs systemd-analyze (package systemd)"
fi

# ---- the man page --------------------------------------------------------------

if have groff; then
	groff -man -Tutf8 -ww -z "$MAN" >"$TMP/groff.out" 2>&1
	tf_eq "groff -man -ww: no warning" "" "$(head -5 "$TMP/groff.out")"
	page=$(groff -man -Tutf8 -P-c -P-b -P-u "$MAN" 2>/dev/null)
	# Every command of main.c's table, and every option of its option
	# table: the man page cannot fall behind either.
	cmds=$(sed -n '/^static const struct command commands\[\]/,/^};/p' "$REPO/src/main.c" |
		grep -oE '^\s*\{ "[a-z-]+"' | grep -oE '[a-z-]+')
	opts=$(sed -n '/^static const struct option_spec options\[\]/,/^};/p' "$REPO/src/main.c" |
		grep -oE '^\s*\{ "[a-z-]+"' | grep -oE '[a-z-]+')
	missing=
	for c in $cmds agent; do
		grep -qE "^ {7}$c( |$)" <<<"$page" || missing+=" $c"
	done
	tf_eq "man: every command has its entry" "" "$missing"
	missing=
	for o in $opts prometheus pin unpin config flow-metrics; do
		grep -qE -- "--$o([ =[,]|$)" <<<"$page" || missing+=" --$o"
	done
	tf_eq "man: every option of src/main.c is described" "" "$missing"
	missing=
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" FILES SIGNALS EXAMPLES "SEE ALSO"; do
		grep -qx "$s" <<<"$page" || missing+=" [$s]"
	done
	tf_eq "man: every section" "" "$missing"
else
	tf_skip "man page" "needs groff (package groff-base)"
fi

# ---- the agent's example config ------------------------------------------------

keys="vm iface flow-metrics max-flows prometheus no-nat no-drops interval"
missing=
for k in $keys; do
	grep -qE "^#$k = " "$DOC/agent.conf" || missing+=" $k"
done
tf_eq "agent.conf: every key, commented" "" "$missing"
tf_eq "agent.conf: as installed, it sets nothing" "" "$(grep -vE '^(#|$)' "$D/etc/tapflow/agent.conf")"

# ---- Prometheus and VictoriaMetrics ----------------------------------------------

if have promtool; then
	# The installed copies: prometheus.yml names the rules file beside it.
	tf_run "promtool check config" promtool check config "$DOC/prometheus.yml"
	tf_run "promtool check rules" promtool check rules "$DOC/tapflow.rules.yml"
	(cd "$DOC" && promtool test rules tapflow.rules.test.yml) >"$TMP/ptest.out" 2>&1
	if grep -q SUCCESS "$TMP/ptest.out" && ! grep -q FAILED "$TMP/ptest.out"; then
		tf_ok "promtool test rules: every recording rule and alert"
	else
		tf_fail "promtool test rules" "$(head -20 "$TMP/ptest.out")"
	fi
	# Each rule has a test: a rule nobody checks is a rule that can rot.
	untested=
	for r in $(grep -oE '^ *- (record|alert): [^ ]+' "$DOC/tapflow.rules.yml" | awk '{print $3}'); do
		grep -qE "(expr|alertname): $r\$" "$DOC/tapflow.rules.test.yml" || untested+=" $r"
	done
	tf_eq "every rule has a test" "" "$untested"
else
	tf_skip "promtool" "needs promtool (package prometheus)"
fi
if have vmalert; then
	tf_run "vmalert -dryRun: the rules are valid MetricsQL" \
		vmalert -rule="$DOC/tapflow.rules.yml" -dryRun -loggerLevel=ERROR
else
	tf_skip "vmalert -dryRun" "needs vmalert (package victoria-metrics)"
fi
if have vmagent; then
	# vmagent reads the scrape part of the same file; the rest is Prometheus'.
	tf_run "vmagent reads prometheus.yml's scrape config" \
		vmagent -promscrape.config="$DOC/prometheus.yml" -promscrape.config.strictParse=false \
		-promscrape.config.dryRun -loggerLevel=ERROR
else
	tf_skip "vmagent -promscrape.config.dryRun" "needs vmagent (package victoria-metrics)"
fi

# ---- the Grafana dashboard -------------------------------------------------------

DASH=$DOC/tapflow.json
if jq empty "$DASH" 2>"$TMP/jq.out"; then
	tf_ok "dashboard: valid JSON"
else
	tf_fail "dashboard: valid JSON" "$(cat "$TMP/jq.out")"
	tf_finish
fi
tf_eq "dashboard: every panel has a non-empty expr in each target" "" \
	"$(jq -r '.panels[] | recurse(.panels[]?) | select(.type != "row")
		| select((.targets // []) | length == 0 or any(.[]; (.expr // "") == "")) | .title' "$DASH")"
tf_eq "dashboard: panel ids unique" "" "$(jq -r '[.panels[].id] | group_by(.) | map(select(length > 1)[0]) | .[]' "$DASH")"
tf_eq "dashboard: every query on the datasource variable" "" \
	"$(jq -r '.panels[] | select(.datasource.uid != "${datasource}" or any(.targets[]; .datasource.uid != "${datasource}")) | .title' "$DASH")"
tf_eq "dashboard: the variables" "datasource host domain" "$(jq -r '[.templating.list[].name] | join(" ")' "$DASH")"
nq=$("$REPO/tools/dashboard-queries.sh" "$DASH" | wc -l)
tf_eq "dashboard-queries.sh: one line per target" "$(jq '[.panels[].targets[]] | length' "$DASH")" "$nq"
tf_eq "dashboard-queries.sh: TITLE<TAB>EXPR, no empty one" "" \
	"$("$REPO/tools/dashboard-queries.sh" "$DASH" | awk -F'\t' 'NF != 2 || $1 == "" || $2 == ""')"
tf_eq "dashboard-queries.sh --expand: no variable left" "" \
	"$("$REPO/tools/dashboard-queries.sh" --expand "$DASH" | grep -F '$')"
# Each panel query, variables expanded, as a recording rule: promtool and
# vmalert then parse it as PromQL and MetricsQL.
{
	echo "groups:"
	echo "  - name: dashboard"
	echo "    rules:"
	n=0
	"$REPO/tools/dashboard-queries.sh" --expand "$DASH" | while IFS=$'\t' read -r _ expr; do
		n=$((n + 1))
		printf '      - record: dashboard:query_%d\n        expr: %s\n' "$n" \
			"$(jq -Rn --arg e "$expr" '$e')"
	done
} >"$TMP/queries.yml"
if have promtool; then
	tf_run "dashboard queries parse as PromQL" promtool check rules "$TMP/queries.yml"
fi
if have vmalert; then
	tf_run "dashboard queries parse as MetricsQL" \
		vmalert -rule="$TMP/queries.yml" -dryRun -loggerLevel=ERROR
fi

# ---- install again, uninstall ----------------------------------------------------

echo "max-flows = 131072" >>"$D/etc/tapflow/agent.conf"
make -s -C "$REPO" install DESTDIR="$D" PREFIX=/usr >"$TMP/install.log" 2>&1
tf_check "a second install keeps a changed agent.conf" grep -qx 'max-flows = 131072' "$D/etc/tapflow/agent.conf"
if make -s -C "$REPO" uninstall DESTDIR="$D" PREFIX=/usr >"$TMP/uninstall.log" 2>&1; then
	tf_ok "make uninstall"
else
	tf_fail "make uninstall" "$(tail -5 "$TMP/uninstall.log")"
fi
tf_eq "uninstall leaves only the changed agent.conf" "/etc/tapflow/agent.conf" \
	"$(cd "$D" && find . -type f | sed 's/^\.//')"
cp "$REPO/contrib/agent.conf" "$D/etc/tapflow/agent.conf"
make -s -C "$REPO" uninstall DESTDIR="$D" PREFIX=/usr >/dev/null 2>&1
tf_eq "an unchanged agent.conf goes, with its directory" "" "$(cd "$D" && find . -path ./etc/tapflow -o -type f)"

tf_finish
