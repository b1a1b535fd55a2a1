#!/usr/bin/env bash
# The documentation's picture stays current: docs/architecture.svg records the
# sha256 of the docs/architecture.dot it was rendered from (make docs), which
# must be the .dot as it is now; and the .dot must render without a warning
# (skipped, saying so, where Graphviz is not installed); and bulkhead(1) has
# every subcommand `bulkhead --help` lists, options and all; and every
# session a header defines has its page in docs/sessions/.
set -u
. "$(dirname "$0")/../vm/lib.sh"
dotfile=$ROOT/docs/architecture.dot
svg=$ROOT/docs/architecture.svg
want=$(sha256sum <"$dotfile" | cut -d' ' -f1)
got=$(sed -n 's/^<!-- rendered from docs\/architecture.dot sha256 \([0-9a-f]*\) -->$/\1/p' "$svg" 2>/dev/null)
[ "$got" = "$want" ]
result docs_architecture_svg_current $? "docs/architecture.svg rendered from ${got:-an unknown source}, docs/architecture.dot is $want$([ "$got" = "$want" ] || echo ": run make docs and commit docs/architecture.svg")"

if command -v dot >/dev/null; then
	out=$(dot -Tsvg "$dotfile" 2>&1 >/dev/null)
	rc=$?
	[ $rc = 0 ] && [ -z "$out" ]
	result docs_architecture_renders $? "$(dot -V 2>&1): exit $rc${out:+: $out}"
else
	result docs_architecture_renders 0 "skipped: Graphviz's dot is not installed (apt-get install graphviz to check that docs/architecture.dot renders)"
fi

# bulkhead(1) has every subcommand as `bulkhead --help` lists it, with the same options
bulkhead_bin=$BUILD/tools/bulkhead/bulkhead
usages=$("$bulkhead_bin" --help 2>/dev/null | sed -n 's/^  bulkhead \([a-z].*\)$/\1/p' | grep -v '^COMMAND')
headings=$(sed -n 's/^\.SS "\(.*\)"$/\1/p' "$ROOT/man/bulkhead.1" | sed 's/\\//g')
missing=
while read -r u; do
	[ -n "$u" ] && ! grep -qxF -- "$u" <<<"$headings" && missing+=" [$u]"
done <<<"$usages"
n=$(grep -c . <<<"$usages")
[ "$n" -gt 10 ] && [ -z "$missing" ]
result docs_man_bulkhead_current $? "$n subcommands in bulkhead --help${missing:+; not in man/bulkhead.1 as written there:$missing (add a .SS heading)}"

# every session a header defines (#define BH_X_SERVICE "name") has its row in docs/sessions/
services=$(grep -ho 'define BH_[A-Z_]*_SERVICE "[a-z_-]*"' "$ROOT"/include/bulkhead/*.h | sed 's/.*"\(.*\)"/\1/' | sort -u)
missing=
for s in $services; do
	grep -q "^| [^|]*\`$s\`" "$ROOT/docs/sessions/README.md" || missing+=" $s"
done
[ -n "$services" ] && [ -z "$missing" ]
result docs_sessions_current $? "sessions in include/bulkhead: $(tr "\n" " " <<<"$services")${missing:+; no row in docs/sessions/README.md:$missing (add a page and a row)}"
