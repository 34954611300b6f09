#!/bin/sh
# Private mirror servers for filerepo's tests, on 127.0.0.1 only, each on a
# free port: nginx (http), vsftpd (anonymous ftp) and Apache with mod_dav
# (WebDAV, Basic authentication for writes).  Everything lives under DIR:
#   DIR/http/  nginx's document root      DIR/ftp/  vsftpd's anonymous root
#   DIR/dav/   the WebDAV root            DIR/mirrors.env  ports and paths
# Usage (as root): tools/mirrors.sh start|stop DIR [http|ftp|dav]
#   start: starts the servers (all, or the one named) and waits until they
#          accept connections; a server started before keeps its port.
#   stop:  stops them; the files stay (the caller removes DIR).
set -eu

verb=${1:-}
dir=${2:-}
only=${3:-}
if [ -z "$verb" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop DIR [http|ftp|dav]" >&2
    exit 64
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
env_file="$dir/mirrors.env"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
    i=0
    while ! python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            echo "mirrors: $2 did not start on port $1" >&2
            return 1
        fi
        sleep 0.1
    done
}

# Ports are chosen once and kept, so a server restarted in a test comes
# back where the mirror URL points.
if [ ! -f "$env_file" ]; then
    {
        echo "MIRROR_HTTP_PORT=$(free_port)"
        echo "MIRROR_FTP_PORT=$(free_port)"
        echo "MIRROR_DAV_PORT=$(free_port)"
        echo "MIRROR_HTTP_ROOT=$dir/http"
        echo "MIRROR_FTP_ROOT=$dir/ftp"
        echo "MIRROR_DAV_ROOT=$dir/dav/root"
        echo "MIRROR_DAV_USER=pusher"
        echo "MIRROR_DAV_PASSWORD_FILE=$dir/dav/password"
    } > "$env_file"
fi
. "$env_file"

start_http() {
    mkdir -p "$dir/http" "$dir/nginx/tmp"
    cat > "$dir/nginx/nginx.conf" <<CONF
daemon on;
user root;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 64; }
http {
    access_log $dir/nginx/access.log;
    client_body_temp_path $dir/nginx/tmp/body;
    proxy_temp_path $dir/nginx/tmp/proxy;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi;
    uwsgi_temp_path $dir/nginx/tmp/uwsgi;
    scgi_temp_path $dir/nginx/tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$MIRROR_HTTP_PORT;
        root $dir/http;
    }
}
CONF
    nginx -c "$dir/nginx/nginx.conf" -g "" -p "$dir/nginx" 2>>"$dir/nginx/error.log"
    wait_port "$MIRROR_HTTP_PORT" nginx
}

stop_http() {
    if [ -f "$dir/nginx/nginx.pid" ]; then
        kill "$(cat "$dir/nginx/nginx.pid")" 2>/dev/null || true
        i=0
        while [ -f "$dir/nginx/nginx.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        rm -f "$dir/nginx/nginx.pid"
    fi
}

start_ftp() {
    mkdir -p "$dir/ftp" "$dir/vsftpd"
    chmod 755 "$dir/ftp"
    cat > "$dir/vsftpd/vsftpd.conf" <<CONF
listen=YES
listen_address=127.0.0.1
listen_port=$MIRROR_FTP_PORT
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$dir/ftp
local_enable=NO
write_enable=NO
pasv_enable=YES
pasv_address=127.0.0.1
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
xferlog_enable=NO
vsftpd_log_file=$dir/vsftpd/vsftpd.log
CONF
    setsid vsftpd "$dir/vsftpd/vsftpd.conf" >"$dir/vsftpd/out.log" 2>&1 &
    echo $! > "$dir/vsftpd/vsftpd.pid"
    wait_port "$MIRROR_FTP_PORT" vsftpd
}

stop_ftp() {
    if [ -f "$dir/vsftpd/vsftpd.pid" ]; then
        kill "$(cat "$dir/vsftpd/vsftpd.pid")" 2>/dev/null || true
        rm -f "$dir/vsftpd/vsftpd.pid"
    fi
}

start_dav() {
    mkdir -p "$dir/dav/root" "$dir/dav/run" "$dir/dav/lock"
    if [ ! -f "$dir/dav/password" ]; then
        python3 -c 'import secrets; print(secrets.token_hex(12))' > "$dir/dav/password"
        chmod 600 "$dir/dav/password"
        htpasswd -b -c -B "$dir/dav/htpasswd" "$MIRROR_DAV_USER" "$(cat "$dir/dav/password")" \
            >/dev/null 2>&1
    fi
    chown -R www-data:www-data "$dir/dav/root" "$dir/dav/lock" "$dir/dav/run"
    chmod 755 "$dir" "$dir/dav"
    chmod 644 "$dir/dav/htpasswd"
    m=/usr/lib/apache2/modules
    cat > "$dir/dav/httpd.conf" <<CONF
ServerRoot /etc/apache2
ServerName 127.0.0.1
Listen 127.0.0.1:$MIRROR_DAV_PORT
PidFile $dir/dav/httpd.pid
DefaultRuntimeDir $dir/dav/run
ErrorLog $dir/dav/error.log
LogLevel warn
Mutex file:$dir/dav/run default
User www-data
Group www-data
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule authz_user_module $m/mod_authz_user.so
LoadModule authn_core_module $m/mod_authn_core.so
LoadModule authn_file_module $m/mod_authn_file.so
LoadModule auth_basic_module $m/mod_auth_basic.so
LoadModule dav_module $m/mod_dav.so
LoadModule dav_fs_module $m/mod_dav_fs.so
DavLockDB $dir/dav/lock/DavLock
DocumentRoot $dir/dav/root
<Directory $dir/dav/root>
    Dav On
    AuthType Basic
    AuthName "filerepo test mirror"
    AuthUserFile $dir/dav/htpasswd
    <LimitExcept GET HEAD OPTIONS>
        Require valid-user
    </LimitExcept>
</Directory>
CONF
    apache2 -f "$dir/dav/httpd.conf" -k start 2>>"$dir/dav/error.log"
    wait_port "$MIRROR_DAV_PORT" apache2
}

stop_dav() {
    if [ -f "$dir/dav/httpd.pid" ]; then
        kill "$(cat "$dir/dav/httpd.pid")" 2>/dev/null || true
        i=0
        while [ -f "$dir/dav/httpd.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        rm -f "$dir/dav/httpd.pid"
    fi
}

case "$verb" in
start|stop)
    for s in http ftp dav; do
        if [ -z "$only" ] || [ "$only" = "$s" ]; then
            "${verb}_$s"
        fi
    done
    ;;
*)
    echo "usage: $0 start|stop DIR [http|ftp|dav]" >&2
    exit 64
    ;;
esac
