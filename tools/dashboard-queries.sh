#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Every query of a Grafana dashboard, one line per panel target:
#   TITLE<TAB>EXPR
# (a panel with no target: TITLE and an empty EXPR, so a check sees it).
# A multi-line EXPR is joined with spaces: PromQL does not mind.
#
#   tools/dashboard-queries.sh [--expand] FILE
#
# --expand replaces Grafana's variables with what a plain query against
# Prometheus or VictoriaMetrics takes: $__rate_interval and $__interval 1m,
# $__range 1h, and every other variable (the dashboard's own, which only
# appear in =~ matchers) .*, i.e. "All".
set -euo pipefail

usage() { echo "usage: $0 [--expand] FILE" >&2; exit 2; }

expand=false
if [ "${1:-}" = --expand ]; then
	expand=true
	shift
fi
[ $# -eq 1 ] || usage

jq -r --argjson expand "$expand" '
	def expand:
		gsub("\\$(__rate_interval|__interval)\\b|\\$\\{(__rate_interval|__interval)\\}"; "1m")
		| gsub("\\$__range\\b|\\$\\{__range\\}"; "1h")
		| gsub("\\$\\{[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\\}|\\$[A-Za-z_][A-Za-z0-9_]*"; ".*");
	.panels[]? | recurse(.panels[]?)
	| select(.type != "row")
	| .title as $t
	| ((.targets // []) | if length == 0 then [{}] else . end)[]
	| (.expr // "" | gsub("\n"; " ")) as $e
	| "\($t)\t\(if $expand then ($e | expand) else $e end)"
' "$1"
