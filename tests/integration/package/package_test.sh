#!/usr/bin/env bash
# The Debian packages, end to end:
#   1. scripts/package builds them (one cpack call) in BUILD;
#   2. every file `cmake --install` installs is in exactly one package;
#   3. dpkg unpacks them into a scratch root (its own dpkg database):
#      files, owners, modes, conffiles registered;
#   4. Depends: from dpkg-shlibdeps (libcurl4 and libssh2-1: declared, as
#      the library loads them on first use), satisfiable on this Debian 12 host,
#      and breakglass-pve (the security boundary) needs neither
#      libbreakglass nor libssh2 nor libcurl;
#   5. lintian: no errors;
#   6. the packaged programs run from the scratch root, the shipped
#      pve.conf is refused until vmid is set, a consumer builds against the
#      packaged -dev files, the logrotate file parses.
set -euo pipefail
src=$1 build=$2
: "${src:?}" "${build:?}"
fail() { echo "package_test: $*" >&2; exit 1; }
for tool in dpkg dpkg-deb dpkg-shlibdeps lintian logrotate cc pkg-config; do
	command -v "$tool" >/dev/null || fail "$tool missing: run scripts/bootstrap"
done
work=$(mktemp -d /tmp/bg-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
debs=$work/debs root=$work/root

# 1. build
"$src/scripts/package" "$build" "$debs" >"$work/package.log" 2>&1 || { tail -n 40 "$work/package.log"; fail "scripts/package failed"; }
ver=$(dpkg-deb -f "$debs"/breakglass-pve_*.deb Version)
lib=$(cd "$debs" && ls libbreakglass[0-9]*_*.deb | sed 's/_.*//')
soname=$(readelf -d "$build/lib/libbreakglass.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[[ "$lib" == "libbreakglass${soname#libbreakglass.so.}" ]] || fail "library package $lib does not follow the soname $soname"
expected=(breakglass-pve breakglassctl libbreakglass-dev "$lib")
[[ -x "$build/apps/web/breakglass-web" ]] && expected+=(breakglass-web)
for p in "${expected[@]}"; do
	[[ -f "$debs/${p}_${ver}_amd64.deb" ]] || fail "package $p was not built"
done
echo "built: ${expected[*]} ($ver)"

# 2. nothing installed is left out of the packages
DESTDIR=$work/install cmake --install "$build" >/dev/null
(cd "$work/install" && find . -not -type d | sed 's|^\.||' | sort) >"$work/installed"
for d in "$debs"/*.deb; do dpkg-deb -c "$d"; done | awk '$1 !~ /^d/ {print $6}' | sed 's|^\.||' | sort >"$work/packaged"
missing=$(comm -23 "$work/installed" "$work/packaged")
[[ -z "$missing" ]] || fail "installed but in no package: $missing"
dups=$(uniq -d "$work/packaged")
[[ -z "$dups" ]] || fail "in two packages: $dups"

# 3. unpack into a scratch dpkg root (no maintainer scripts run: they
# would run in a root that has no shell)
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
: >"$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"
dpkg --root="$root" --force-depends --force-not-root --unpack "$debs"/*.deb >"$work/dpkg.log" 2>&1 ||
	{ cat "$work/dpkg.log"; fail "dpkg --unpack failed"; }
# Configured too (conffiles move into place), all but the library, whose
# postinst would run the host's ldconfig; scratch roots have no triggers.
configure=()
for p in "${expected[@]}"; do [[ "$p" != "$lib" ]] && configure+=("$p"); done
dpkg --root="$root" --force-depends --force-not-root --no-triggers --configure "${configure[@]}" >>"$work/dpkg.log" 2>&1 ||
	{ cat "$work/dpkg.log"; fail "dpkg --configure failed"; }
for p in "${configure[@]}"; do
	dpkg --root="$root" -s "$p" | grep -c '^Status: install ok installed' >/dev/null || fail "$p not installed"
done
dpkg --root="$root" -s "$lib" | grep -c '^Status: install ok unpacked' >/dev/null || fail "$lib not unpacked"

mode() { stat -c '%a %U:%G %F' "$root$1"; }
check_mode() { # path "mode owner:group type"
	local got
	got=$(mode "$1") || fail "$1 missing"
	[[ "$got" == "$2" ]] || fail "$1: $got, want $2"
}
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
libdir=/usr/lib/$multiarch
check_mode /usr/sbin/breakglass-pve "755 root:root regular file"
check_mode /etc/breakglass/pve.conf "644 root:root regular file"
check_mode /etc/logrotate.d/breakglass-pve "644 root:root regular file"
check_mode /var/lib/breakglass-pve "700 root:root directory"
check_mode /usr/share/man/man8/breakglass-pve.8.gz "644 root:root regular file"
check_mode /usr/share/man/man5/pve.conf.5.gz "644 root:root regular file"
check_mode /usr/bin/breakglassctl "755 root:root regular file"
check_mode /usr/share/man/man1/breakglassctl.1.gz "644 root:root regular file"
check_mode /usr/share/man/man5/breakglass.conf.5.gz "644 root:root regular file"
check_mode "$libdir/$soname" "777 root:root symbolic link"
check_mode /usr/include/breakglass.h "644 root:root regular file"
check_mode "$libdir/pkgconfig/breakglass.pc" "644 root:root regular file"
check_mode "$libdir/cmake/breakglass/breakglassConfig.cmake" "644 root:root regular file"
for p in "${expected[@]}"; do
	check_mode "/usr/share/doc/$p/copyright" "644 root:root regular file"
	check_mode "/usr/share/doc/$p/changelog.Debian.gz" "644 root:root regular file"
done
# no file in /run (lock_dir is created by the program) or under /usr/local
! dpkg-deb -c "$debs"/breakglass-pve_*.deb | grep -E '\./(run|var/run|usr/local)/' || fail "breakglass-pve ships into /run or /usr/local"

conffiles=$(dpkg --root="$root" -s breakglass-pve | sed -n '/^Conffiles:/,/^[A-Z]/p' | awk 'NF==2 {print $1}' | sort | tr '\n' ' ')
[[ "$conffiles" == "/etc/breakglass/pve.conf /etc/logrotate.d/breakglass-pve " ]] || fail "breakglass-pve conffiles: '$conffiles'"
# every file in /etc of every package is a conffile
for d in "$debs"/*.deb; do
	p=$(dpkg-deb -f "$d" Package)
	for f in $(dpkg-deb -c "$d" | awk '$1 !~ /^d/ {print $6}' | sed -n 's|^\./etc/|/etc/|p'); do
		dpkg --root="$root" -s "$p" | grep -c "^ $f " >/dev/null || fail "$p: $f is not a conffile"
	done
done

# 4. Depends
depends() { dpkg-deb -f "$debs/${1}_${ver}_amd64.deb" Depends; }
echo "Depends:"
for p in "${expected[@]}"; do echo "  $p: $(depends "$p")"; done
for want in libc6 libssh2-1 libcurl4 libjson-c5 libinih1; do
	depends "$lib" | grep -c "\b$want (>= " >/dev/null || fail "$lib does not depend on $want"
done
depends breakglassctl | grep -c "$lib (= $ver)" >/dev/null || fail "breakglassctl does not depend on $lib (= $ver)"
depends breakglassctl | grep -c "libc6 (>= " >/dev/null || fail "breakglassctl: no libc6 dependency from dpkg-shlibdeps"
depends libbreakglass-dev | grep -c "$lib (= $ver)" >/dev/null || fail "libbreakglass-dev does not depend on $lib (= $ver)"
pve_deps=$(depends breakglass-pve)
grep -q "libc6 (>= " <<<"$pve_deps" || fail "breakglass-pve: no libc6 dependency from dpkg-shlibdeps"
if grep -Eq 'libbreakglass|libssh2|libcurl' <<<"$pve_deps"; then
	fail "breakglass-pve must be self-contained, without libssh2 or libcurl: $pve_deps"
fi
dpkg-deb -I "$debs/${lib}_${ver}_amd64.deb" shlibs | grep -c "^libbreakglass ${soname#libbreakglass.so.} $lib (>= $ver)" >/dev/null ||
	fail "$lib has no shlibs entry"
dpkg-deb -I "$debs/${lib}_${ver}_amd64.deb" triggers | grep -c '^activate-noawait ldconfig' >/dev/null || fail "$lib has no ldconfig trigger"
# Each dependency on another package is satisfiable here, Debian 12 as on
# Proxmox VE 8: installed, at the version asked for.
satisfied() { # "name (op version)"
	local name op v have
	name=$(awk '{print $1}' <<<"$1")
	have=$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null) || return 1
	[[ "$1" == *"("* ]] || return 0
	op=$(sed 's/.*(\([<>=]*\) .*/\1/' <<<"$1")
	v=$(sed 's/.*([<>=]* \(.*\))/\1/' <<<"$1")
	case $op in '>=') op=ge ;; '=') op=eq ;; '<=') op=le ;; '>>') op=gt ;; '<<') op=lt ;; esac
	dpkg --compare-versions "$have" "$op" "$v"
}
for p in "${expected[@]}"; do
	IFS=',' read -ra deps <<<"$(depends "$p")"
	for dep in "${deps[@]}"; do
		dep=$(sed 's/^ *//; s/ *$//' <<<"$dep")
		[[ "$dep" == libbreakglass* ]] && continue
		ok=0
		IFS='|' read -ra alts <<<"$dep"
		for a in "${alts[@]}"; do
			satisfied "$(sed 's/^ *//; s/ *$//' <<<"$a")" && ok=1
		done
		[[ $ok == 1 ]] || fail "$p: dependency '$dep' is not satisfied on this Debian host"
	done
done

# 5. lintian: no errors (warnings are printed)
set +e
lintian --fail-on error "$debs"/*.deb >"$work/lintian.log" 2>&1
rc=$?
set -e
grep -v 'root privileges' "$work/lintian.log" || true
[[ $rc == 0 ]] || fail "lintian found errors (exit $rc)"

# 6. the packaged programs, from the scratch root
export LD_LIBRARY_PATH=$root$libdir
# ldd's output first, then grep: `ldd | grep -q` under pipefail fails at
# random when grep quits early and ldd takes a SIGPIPE (the same reason the
# pipes above use grep -c, which reads all its input)
loaded=$(ldd "$root/usr/bin/breakglassctl")
grep -q "$soname => $root$libdir/$soname" <<<"$loaded" || fail "breakglassctl did not load the packaged $soname"
"$root/usr/bin/breakglassctl" version >"$work/version" 2>&1 || { cat "$work/version"; fail "breakglassctl version failed"; }
grep -q "${ver%-*}" "$work/version" || fail "breakglassctl version does not show ${ver%-*}: $(cat "$work/version")"
unset LD_LIBRARY_PATH
ldd "$root/usr/sbin/breakglass-pve" | grep -Eq 'libbreakglass|libssh2|libcurl' && fail "breakglass-pve links libbreakglass, libssh2 or libcurl"
set +e
"$root/usr/sbin/breakglass-pve" --config "$root/etc/breakglass/pve.conf" status >"$work/pve.out" 2>&1
rc=$?
set -e
[[ $rc == 1 ]] || fail "the shipped pve.conf (no vmid) gave exit $rc, want 1: $(cat "$work/pve.out")"
grep -q 'vmid' "$work/pve.out" || fail "the refusal does not name vmid: $(cat "$work/pve.out")"
echo "shipped pve.conf refused until vmid is set: $(head -n1 "$work/pve.out")"

# a consumer builds against the packaged -dev files (sysroot = scratch root)
PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_PATH=$root$libdir/pkgconfig \
	pkg-config --cflags --libs breakglass >"$work/pc" || fail "pkg-config breakglass failed"
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror -o "$work/consumer" "$src/examples/consumer/consumer.c" $(cat "$work/pc") ||
	fail "consumer does not build against the packaged headers and library"
LD_LIBRARY_PATH=$root$libdir "$work/consumer" | grep -c "^libbreakglass ${ver%-*}" >/dev/null || fail "consumer did not run"

# the logrotate file parses (debug mode: nothing is rotated)
logrotate --debug --state "$work/logrotate.state" "$root/etc/logrotate.d/breakglass-pve" >"$work/logrotate.log" 2>&1 ||
	{ cat "$work/logrotate.log"; fail "logrotate rejects /etc/logrotate.d/breakglass-pve"; }
grep -q 'considering log /var/log/breakglass-pve.log' "$work/logrotate.log" || fail "logrotate does not consider the log"

# breakglass-web's unit, when it is packaged
if [[ " ${expected[*]} " == *" breakglass-web "* ]]; then
	unit=$root/lib/systemd/system/breakglass-web.service
	check_mode /lib/systemd/system/breakglass-web.service "644 root:root regular file"
	for k in 'DynamicUser=yes' 'ProtectSystem=strict' 'NoNewPrivileges=yes' 'StateDirectory=breakglass'; do
		grep -qx "$k" "$unit" || fail "breakglass-web.service lacks $k"
	done
	check_mode /usr/sbin/breakglass-web "755 root:root regular file"
	# systemd's own rating of the sandbox: exposure at most 2.0 of 10
	# ("OK"; the unit as written rates 1.4)
	if command -v systemd-analyze >/dev/null; then
		systemd-analyze security --offline=yes --threshold=20 "$unit" >"$work/exposure" 2>&1 ||
			{ tail -n 30 "$work/exposure"; fail "breakglass-web.service: exposure above 2.0"; }
		grep 'Overall exposure' "$work/exposure"
	fi
fi
echo "package_test: ${#expected[@]} packages built, unpacked and checked; lintian clean of errors"
