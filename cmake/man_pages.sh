#!/usr/bin/env bash
# Generates pgbaton's man pages from the binary's own --help, so they are never written twice:
# pgbaton(1) from `pgbaton --help`, and one page per verb, pgbaton-VERB(1) (pgbaton-queue-inspect(1)
# for a nested one), from `pgbaton VERB --help`. The verbs are read from the "Subcommands:" list of
# the help itself, so a new verb gets its page without a change here. help2man (Debian package
# help2man) does the formatting. Writes gzipped pages (pgbaton.1.gz, ...) into OUT_DIR after
# emptying it.
#   man_pages.sh PGBATON_BINARY OUT_DIR VERSION
set -euo pipefail
if [ "$#" -ne 3 ]; then
  echo "usage: $0 PGBATON_BINARY OUT_DIR VERSION" >&2
  exit 2
fi
BIN=$(realpath "$1")
OUT=$2
VERSION=$3
HELP2MAN=${HELP2MAN:-help2man}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"

# subcommands ARGS...: prints "name<TAB>description" for each entry of the "Subcommands:" list of
# `pgbaton ARGS... --help`. CLI11 puts a description on the next line when the name is too long.
subcommands() {
  "$BIN" "$@" --help | awk '
    /^Subcommands:$/ { in_list = 1; next }
    in_list && /^$/ { in_list = 0 }
    in_list && /^  [^ ]/ {
      if (name != "") print name "\t" desc
      name = $1; sub(/^  [^ ]+ */, ""); desc = $0; next
    }
    in_list && /^   / && desc == "" { sub(/^ +/, ""); desc = $0 }
    END { if (name != "") print name "\t" desc }'
}

# Every command path, depth first: "preflight", "queue", "queue inspect", ...
paths=()
descs=()
walk() {
  local name desc
  while IFS=$'\t' read -r name desc; do
    paths+=("${*:+$* }$name")
    descs+=("$desc")
    walk "$@" "$name"
  done < <(subcommands "$@")
}
walk
if [ "${#paths[@]}" -eq 0 ]; then
  echo "$0: found no subcommands in \`$BIN --help\`" >&2
  exit 1
fi

docs_paragraph='The guides (DBA, operator, cutover runbook) and the reference of every command, configuration
key, metric and exit code are installed with pgbaton under
.I share/doc/pgbaton
(from the Debian package:
.IR /usr/share/doc/pgbaton ).'

# pgbaton(1): the global options, the list of verbs, and a SEE ALSO naming every verb's page.
{
  echo '[SEE ALSO]'
  for i in "${!paths[@]}"; do
    page="pgbaton-${paths[$i]// /-}"
    sep=','
    [ "$i" -eq $((${#paths[@]} - 1)) ] && sep=''
    echo ".BR ${page//-/\\-} (1)$sep"
  done
  echo '.PP'
  echo "$docs_paragraph"
} > "$work/pgbaton.h2m"
"$HELP2MAN" --no-info --version-string="$VERSION" \
  --name="move a live PostgreSQL database to a new major version" \
  --include="$work/pgbaton.h2m" --output="$OUT/pgbaton.1" "$BIN"

# pgbaton-VERB(1): help2man names a page after the program it runs, so each verb gets a
# wrapper named after its page that runs `pgbaton VERB ...`.
for i in "${!paths[@]}"; do
  words=${paths[$i]}
  page="pgbaton-${words// /-}"
  printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$BIN" "$words" > "$work/$page"
  chmod +x "$work/$page"
  {
    echo '[SEE ALSO]'
    echo '.BR pgbaton (1)'
    echo '.PP'
    echo "$docs_paragraph"
  } > "$work/$page.h2m"
  "$HELP2MAN" --no-info --version-string="$VERSION" --name="${descs[$i]}" \
    --include="$work/$page.h2m" --output="$OUT/$page.1" "$work/$page"
done

# Debian's man pages are gzipped; -n keeps the name and time out of the archive.
gzip -9nf "$OUT"/*.1
