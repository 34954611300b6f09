#!/bin/sh
# Install every build, test and demo dependency of filerepo from Debian 12's
# packages. Idempotent: packages already present are left as they are.
# Usage (as root): tools/deps.sh
set -eu

packages="
build-essential cmake pkg-config
libpq-dev libstrophe-dev libgit2-dev libcurl4-openssl-dev libcjson-dev
libssl-dev zlib1g-dev libcmocka-dev
postgresql postgresql-contrib
ejabberd erlang-dev
python3 python3-slixmpp
valgrind clang libclang-rt-14-dev
procps iproute2 util-linux openssl media-types xfsprogs
nginx-light curl
vsftpd apache2 apache2-utils
"

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "deps: all packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing:$missing (run as root to install)" >&2
    exit 1
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# filerepo starts its own private servers on loopback: the packaged ones
# (nginx and apache2 would both want port 80) are not started by the
# install (policy-rc.d, unless the machine has its own).
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    ours=1
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
[ -n "$ours" ] && rm -f "$policy" && trap - EXIT
echo "deps: done"
