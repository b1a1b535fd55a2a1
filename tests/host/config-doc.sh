#!/usr/bin/env bash
# The config reference stays current: every key and section the parser knows
# (core/config.c, core/vm_config.c) is documented in docs/config.md and in
# bulkhead.conf(5); a key added to the parser and not to them fails here, by name.
set -u
. "$(dirname "$0")/../vm/lib.sh"
# the parser compares each key it knows with strcmp(name, "KEY")
keys=$(grep -ho 'strcmp(name, "[a-z_]*")' "$ROOT/core/config.c" "$ROOT/core/vm_config.c" |
	sed 's/.*"\(.*\)")/\1/' | sort -u)
# and each section with strcmp(section, "core") or sscanf(section, "component ...")
sections=$(grep -ho 'strcmp(section, "[a-z_]*")\|sscanf(section, "[a-z_]*' "$ROOT/core/config.c" |
	sed 's/^[^"]*"\([a-z_]*\).*/\1/' | sort -u)
nkeys=$(wc -w <<<"$keys")
section_list=$(tr '\n' ' ' <<<"$sections" | sed 's/ $//; s/ /], [/g')

documented() { # test-name file how-a-key-line-starts (a grep regex)
	local missing='' k
	for k in $keys; do
		grep -q "$3$k\b" "$2" || missing+=" $k"
	done
	for k in $sections; do
		grep -q "\[$k" "$2" || missing+=" [$k]"
	done
	# a parser this test no longer understands must not pass by finding nothing
	[ "$nkeys" -gt 40 ] && [ -z "$missing" ]
	result "$1" $? "$nkeys keys and the sections [$section_list] in core/config.c and core/vm_config.c${missing:+; not documented in ${2#"$ROOT"/}:$missing (add them)}"
}
# docs/config.md: a table row per key, "| `key` |"
documented config_doc_reference "$ROOT/docs/config.md" '^| `'
# the manual page: a tagged paragraph per key, ".B key"
documented config_doc_manpage "$ROOT/man/bulkhead.conf.5" '^\.B '
