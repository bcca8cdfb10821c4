#!/usr/bin/env bash
# Install the built library into a temporary prefix, then build a consumer
# program outside the tree: with pkg-config (after moving the installed
# tree elsewhere), shared and static, and with find_package(breakglass).
# Each program must run and print the version.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d /tmp/bg-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

# A sanitized library needs the sanitizer runtime linked into the program
# that loads it, so the consumers are built with the library's flags.
sanitize=$(sed -n 's/^BG_SANITIZE:STRING=//p' "$build/CMakeCache.txt")
san_flags=()
[[ -n "$sanitize" ]] && san_flags=(-fsanitize="$sanitize" -fno-omit-frame-pointer)

cmake --install "$build" --prefix "$prefix" >"$work/install.log"
test -f "$prefix/include/breakglass.h"
libdir=$(find "$prefix" -name 'libbreakglass.so' -printf '%h\n' | head -n1)
pc=$(find "$prefix" -name breakglass.pc | head -n1)
test -n "$libdir" -a -n "$pc"
readelf -d "$libdir/libbreakglass.so" | grep -q 'SONAME.*libbreakglass.so.1' || { echo "soname is not libbreakglass.so.1"; exit 1; }

# pkg-config: the .pc file locates its prefix from where it lies, so the
# installed tree still works after it is moved (nothing edited).
grep -q '^prefix=${pcfiledir}' "$pc" || { echo "breakglass.pc is not relocatable:"; cat "$pc"; exit 1; }
moved=$work/moved/elsewhere
mkdir -p "$(dirname "$moved")"
mv "$prefix" "$moved"
mpc=$moved${pc#"$prefix"}
mlibdir=$moved${libdir#"$prefix"}
export PKG_CONFIG_PATH=$(dirname "$mpc")
test "$(pkg-config --variable=includedir breakglass)" -ef "$moved/include"
test "$(pkg-config --variable=libdir breakglass)" -ef "$mlibdir"
cc -Wall -Wextra -Werror "${san_flags[@]}" -o "$work/consumer-pc" "$src/examples/consumer/consumer.c" $(pkg-config --cflags --libs breakglass)
LD_LIBRARY_PATH=$mlibdir "$work/consumer-pc" | grep -q '^libbreakglass [0-9]'
# and statically, with what `pkg-config --static` adds: libcurl and libssh2
# are not among it (the library loads them when first used, core/dl.h)
static_libs=$(pkg-config --static --libs-only-l breakglass)
case " $static_libs " in *" -lcurl "* | *" -lssh2 "*) echo "breakglass.pc links libcurl or libssh2: $static_libs"; exit 1 ;; esac
cc -Wall -Wextra -Werror "${san_flags[@]}" -o "$work/consumer-static" "$src/examples/consumer/consumer.c" \
	$(pkg-config --cflags breakglass) "$mlibdir/libbreakglass.a" ${static_libs//-lbreakglass/}
"$work/consumer-static" | grep -q '^libbreakglass [0-9]'
mv "$moved" "$prefix"

# find_package
cmake -S "$src/examples/consumer" -B "$work/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_FLAGS="${san_flags[*]}" >"$work/cmake.log"
cmake --build "$work/consumer-build" >"$work/build.log"
LD_LIBRARY_PATH=$libdir "$work/consumer-build/consumer" | grep -q '^libbreakglass [0-9]'

# and the consumer reads a config through the installed library
printf '[devvm]\nhost = 127.0.0.1\n[pve]\nhost = 127.0.0.1\n' >"$work/ok.conf"
LD_LIBRARY_PATH=$libdir "$work/consumer-build/consumer" "$work/ok.conf" | grep -q 'devvm 127.0.0.1:22 as breakglass'
printf '[devvm]\nport = x\n' >"$work/bad.conf"
if LD_LIBRARY_PATH=$libdir "$work/consumer-build/consumer" "$work/bad.conf" 2>"$work/err"; then exit 1; fi
grep -q 'bad.conf:2: \[devvm\] port' "$work/err"
echo "install_consumer: pkg-config (shared and static) and find_package consumers built and ran"
