#!/usr/bin/env bash
# `make dist`: the release files, under dist/ (made afresh each time):
#   luaevent-rs-VERSION.tar.gz         the source tarball: the git tree (with uncommitted changes
#                                      to tracked files, if any) plus the Rust crates in vendor/
#                                      and a .cargo/config.toml that makes cargo use them
#   luaevent-rs-VERSION-1.rockspec     the release rockspec, its source.url rewritten to that tarball
#   luaevent-rs-VERSION-1.src.rock     the source rock (the rockspec and the tarball)
#   manifest, manifest-5.x, index.html dist/ as a rocks server (5.1 to 5.5), for
#                                      luarocks install --only-server=dist luaevent-rs
# VERSION is Cargo.toml's: the release rockspec, its tag and its tarball name must agree with it.
# Nothing here needs the network once cargo's cache holds every crate Cargo.lock lists (a build
# only fetches those of its own platform; the first `make dist` fetches the rest, once).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "dist: $*" >&2
  exit 1
}

version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || fail "no [package] version in Cargo.toml"
name=luaevent-rs-$version
rockspec=rockspec/$name-1.rockspec
[ -f "$rockspec" ] || fail "no $rockspec: the release rockspec must carry Cargo.toml's version $version"
grep -q "^version = \"$version-1\"" "$rockspec" || fail "$rockspec does not say version = \"$version-1\""
grep -q "^  url = \"https://.*/v$version/$name\.tar\.gz\",\$" "$rockspec" ||
  fail "$rockspec: source.url must be the v$version release's $name.tar.gz"
grep -q "^  dir = \"$name\",\$" "$rockspec" || fail "$rockspec: source.dir must be \"$name\""

git rev-parse --is-inside-work-tree >/dev/null 2>&1 || fail "make dist needs the git checkout"
command -v luarocks >/dev/null && command -v luarocks-admin >/dev/null ||
  fail "make dist needs luarocks and luarocks-admin (Debian: apt install luarocks)"

# `git stash create` makes a commit of the working tree without touching it (nothing when clean).
commit=$(git stash create)
if [ -n "$commit" ]; then
  echo "dist: the working tree has uncommitted changes; the tarball includes them"
else
  commit=HEAD
fi
untracked=$(git ls-files --others --exclude-standard)
[ -z "$untracked" ] || echo "dist: untracked files are left out (git add them to include them):" $untracked
stamp=$(git log -1 --format=%ct "$commit")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git archive --format=tar --prefix="$name/" "$commit" | tar -x -C "$work"

# Vendored crates make the rock build without crates.io (its build script passes --offline).
(
  cd "$work/$name"
  if ! cargo vendor --locked --offline --quiet vendor >/dev/null 2>"$work/vendor.log"; then
    echo "dist: some crates of Cargo.lock are not in cargo's cache; fetching them from crates.io once"
    cargo fetch --locked --quiet
    cargo vendor --locked --offline --quiet vendor >/dev/null
  fi
  mkdir -p .cargo
  cat >.cargo/config.toml <<'EOF'
# Written by `make dist`: build with the crates in vendor/, never from crates.io.
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "vendor"
EOF
)

rm -rf dist
mkdir dist
dist=$(cd dist && pwd)
# Sorted names, fixed owners and the commit's time: the same tree gives the same tarball.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$stamp" -C "$work" -cf - "$name" |
  gzip -n -9 >"dist/$name.tar.gz"

# The rock builds from the tarball beside it, not from the release URL, so no network is needed.
sed -e "s|^  url = \"https://.*\",\$|  url = \"file://$dist/$name.tar.gz\", -- make dist: the tarball beside this file|" \
  "$rockspec" >"dist/$name-1.rockspec"
grep -q "^  url = \"file://" "dist/$name-1.rockspec" || fail "could not point the rockspec at the tarball"
luarocks lint "dist/$name-1.rockspec"

(cd dist && luarocks pack "$name-1.rockspec" >/dev/null)
[ -f "dist/$name-1.src.rock" ] || fail "luarocks pack made no $name-1.src.rock"
luarocks-admin make-manifest dist >/dev/null
# luarocks 3.8 writes the per-version manifests for Lua 5.1 to 5.4 only, and looks for
# manifest-5.5 alone when it installs for 5.5. The rock's entry is the same there (its one Lua
# dependency, lua >= 5.1, < 5.6, holds for both), so 5.5 gets 5.4's manifest.
[ -f dist/manifest-5.5 ] || cp dist/manifest-5.4 dist/manifest-5.5

echo "dist: made from $(git rev-parse --short "$commit")$([ "$commit" = HEAD ] || echo ' (working tree)'):"
ls -l dist | sed 1d
