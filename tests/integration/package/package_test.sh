#!/usr/bin/env bash
# Builds pgbaton_<version>_amd64.deb from a configured and built tree with CPack, unpacks it into a
# scratch root (dpkg -x) and checks what a DBA gets: the binary runs from there and prints the
# version and the commit it was built from, `preflight --help` works, the man pages and the docs
# are in the package, and the control file declares the runtime libraries.
#   package_test.sh BUILD_DIR SOURCE_DIR VERSION
set -euo pipefail
BUILD=$1
SOURCE=$2
VERSION=$3

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# 1. Build the package into the scratch directory (cpack stages its install there too).
cpack --config "$BUILD/CPackConfig.cmake" -B "$scratch/out" > "$scratch/cpack.log" 2>&1 || {
  cat "$scratch/cpack.log"; echo "FAIL: cpack"; exit 1; }
deb="$scratch/out/pgbaton_${VERSION}_amd64.deb"
[ -f "$deb" ] || { ls -l "$scratch/out"; echo "FAIL: $deb was not built"; exit 1; }
pass "built $(basename "$deb")"

# 2. Unpack into a scratch root, as dpkg -i would lay it out.
root="$scratch/root"
dpkg-deb -x "$deb" "$root"
bin="$root/usr/bin/pgbaton"
[ -x "$bin" ] && pass "usr/bin/pgbaton" || fail "no executable usr/bin/pgbaton in the package"

# 3. --version: the version and the commit of the source tree (or "unknown" outside git). The
#    tree must be built at its current commit: a binary from an older commit fails here, as it
#    should, since the package would misreport what it contains.
version_out=$("$bin" --version) || fail "pgbaton --version exited $?"
expected_commit=unknown
if top=$(git -C "$SOURCE" rev-parse --show-toplevel 2>/dev/null) &&
   [ "$(realpath "$top")" = "$(realpath "$SOURCE")" ]; then
  expected_commit=$(git -C "$SOURCE" rev-parse --short=12 HEAD)
fi
if [[ "$version_out" =~ ^pgbaton\ ${VERSION//./\\.}\ \(commit\ ${expected_commit}(-dirty)?\)$ ]]; then
  pass "--version: $version_out"
else
  fail "--version printed '$version_out', expected 'pgbaton $VERSION (commit $expected_commit[-dirty])'"
fi

# 4. A verb's help runs from the unpacked binary.
if help_out=$("$bin" preflight --help) && grep -q -- '--source' <<<"$help_out" &&
   grep -q -- '--target' <<<"$help_out"; then
  pass "preflight --help"
else
  fail "pgbaton preflight --help failed or does not list --source/--target: $help_out"
fi

# 5. Man pages: pgbaton(1) and one per verb, generated from the same --help.
man1="$root/usr/share/man/man1"
for page in pgbaton pgbaton-preflight pgbaton-copy pgbaton-cutover pgbaton-queue-inspect; do
  if [ -f "$man1/$page.1.gz" ] && zcat "$man1/$page.1.gz" | grep -q '^\.TH '; then
    pass "man page $page(1)"
  else
    fail "man page $page(1) missing or not roff in usr/share/man/man1"
  fi
done
if zcat "$man1/pgbaton-preflight.1.gz" 2>/dev/null | grep -q 'first line is the source password'; then
  pass "pgbaton-preflight(1) carries the --help text"
else
  fail "pgbaton-preflight(1) does not carry the text of 'pgbaton preflight --help'"
fi
# Every verb the binary lists has its page.
while read -r verb; do
  [ -f "$man1/pgbaton-$verb.1.gz" ] || fail "no man page for verb '$verb'"
done < <("$bin" --help | awk '/^Subcommands:$/ {l = 1; next} l && /^$/ {l = 0} l && /^  [^ ]/ {print $1}')

# 6. Docs.
doc="$root/usr/share/doc/pgbaton"
for f in README.md reference/commands.md reference/errors.md guide/dba.md; do
  [ -f "$doc/$f" ] && pass "doc $f" || fail "usr/share/doc/pgbaton/$f missing"
done

# 7. Depends: what the binary links, as dpkg-shlibdeps found it, and the client programs.
depends=$(dpkg-deb -f "$deb" Depends)
# declared PACKAGE: whether Depends names PACKAGE (alternatives and version constraints aside).
declared() {
  tr ',|' '\n\n' <<<"$depends" | awk '{print $1}' | grep -xF -- "$1" >/dev/null
}
for p in libpq5 librdkafka1 libzstd1 libc6 libstdc++6 postgresql-client; do
  declared "$p" && pass "Depends: $p" || fail "Depends lacks $p: $depends"
done
# Every shared library the binary needs belongs to a declared package.
while read -r soname; do
  # No early exit in the pipelines below: under pipefail a writer cut off by SIGPIPE fails them.
  path=$(ldconfig -p | awk -v s="$soname" '$1 == s && /x86-64/ && !done {print $NF; done = 1}')
  [ -n "$path" ] || { fail "cannot find $soname on this machine"; continue; }
  # dpkg knows the file under the path its package ships (/lib or /usr/lib, link or target).
  owner=""
  for candidate in "$path" "$(realpath "$path")" "/usr$path" "/usr$(realpath "$path")"; do
    owner=$(dpkg -S "$candidate" 2>/dev/null | awk -F: 'NR == 1 {print $1}') || owner=""
    [ -n "$owner" ] && break
  done
  if [ -z "$owner" ]; then
    fail "no Debian package owns $path ($soname)"
  elif declared "$owner"; then
    pass "$soname from $owner is declared"
  else
    fail "$soname comes from $owner, which Depends does not declare: $depends"
  fi
done < <(readelf -d "$bin" | awk '/NEEDED/ {gsub(/[][]/, "", $NF); print $NF}')

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all package checks passed"
