#!/usr/bin/env bash
# Ensure the local services Herald needs for `make run` and `make test`:
#   - PostgreSQL on 127.0.0.1:5432 with a role `herald` (LOGIN CREATEDB,
#     password `herald`) and a database `herald` owned by it;
#   - an MQTT broker (Mosquitto) on 127.0.0.1:1883, and the `mosquitto`
#     binary itself (tests start private brokers with `mosquitto -c FILE`);
#   - with --with-cc: a C compiler (gcc), which `go test -race` needs;
#   - with --with-node: Node.js 18+ and npm, which the TypeScript client's
#     tests (clients/js) need.
# Services already answering on those ports are used as they are. Missing
# Debian packages are installed with apt-get (root only, never sudo).
# Idempotent: creates only what is missing, never changes a password.
# Exports nothing; the Makefile passes the URLs to Herald.
set -euo pipefail

WITH_CC=0
WITH_NODE=0
for arg in "$@"; do
  case "$arg" in
    --with-cc) WITH_CC=1 ;;
    --with-node) WITH_NODE=1 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "services.sh: unknown argument: $arg (known: --with-cc, --with-node)" >&2; exit 2 ;;
  esac
done

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV_DIR="${HERALD_DEV_DIR:-$REPO_ROOT/.dev}"
PG_HOST=127.0.0.1
PG_PORT=5432
MQTT_HOST=127.0.0.1
MQTT_PORT=1883
WAIT_SECONDS=60

say()  { echo "services: $*"; }
warn() { echo "services: warning: $*" >&2; }
die()  { echo "services: error: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# tcp_open HOST PORT: true if something accepts a TCP connection there.
tcp_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" >/dev/null 2>&1
}

pg_up() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1
  else
    tcp_open "$PG_HOST" "$PG_PORT"
  fi
}

mqtt_up() { tcp_open "$MQTT_HOST" "$MQTT_PORT"; }

pkg_installed() {
  local status
  status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ]
}

# wait_for DESCRIPTION CHECK-COMMAND...
wait_for() {
  local what="$1"; shift
  local i
  for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
    if "$@"; then return 0; fi
    sleep 0.5
  done
  return 1
}

# ---------------------------------------------------------------- packages --
APT_UPDATED=0
apt_install() {
  [ "$#" -gt 0 ] || return 0
  command -v apt-get >/dev/null 2>&1 ||
    die "need Debian packages [$*] but apt-get is not available; install them by hand"
  is_root ||
    die "need Debian packages [$*] but not running as root (no sudo is used); run as root or: apt-get install -y $*"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$APT_UPDATED" -eq 0 ]; then
    say "apt-get update"
    if ! apt-get -q -o DPkg::Lock::Timeout=300 update; then
      warn "apt-get update failed; trying to install from the package lists already present"
    fi
    APT_UPDATED=1
  fi
  say "apt-get install -y $*"
  # A UTF-8 locale that always exists, so that a cluster created by the
  # postgresql package's postinst is UTF8-encoded.
  LANG=C.UTF-8 LC_ALL=C.UTF-8 apt-get -q -y -o DPkg::Lock::Timeout=300 install "$@" ||
    die "apt-get install $* failed"
}

plan_packages() {
  local -a pkgs=()
  if ! pg_up; then
    pkg_installed postgresql || pkgs+=(postgresql)
    pkg_installed postgresql-client || pkgs+=(postgresql-client)
  elif ! command -v psql >/dev/null 2>&1; then
    pkgs+=(postgresql-client)
  fi
  if ! command -v mosquitto >/dev/null 2>&1 && ! [ -x /usr/sbin/mosquitto ]; then
    pkgs+=(mosquitto)
    pkg_installed mosquitto-clients || pkgs+=(mosquitto-clients)
  fi
  if [ "$WITH_CC" -eq 1 ] && ! command -v gcc >/dev/null 2>&1; then
    pkgs+=(gcc libc6-dev)
  fi
  if [ "$WITH_NODE" -eq 1 ]; then
    command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
  fi
  echo "${pkgs[@]+"${pkgs[@]}"}"
}

# ---------------------------------------------------------------- postgres --
pg_newest_version() {
  local v best=""
  for v in /usr/lib/postgresql/*/bin/postgres; do
    [ -x "$v" ] || continue
    v="${v#/usr/lib/postgresql/}"; v="${v%%/*}"
    if [ -z "$best" ] || [ "$v" -gt "$best" ]; then best="$v"; fi
  done
  echo "$best"
}

# Print "VERSION CLUSTER" of the cluster configured for port 5432, if any.
pg_cluster_on_port() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  local list
  list="$(pg_lsclusters -h 2>/dev/null || true)"
  awk -v p="$PG_PORT" '$3 == p && !found { print $1, $2; found = 1 }' <<<"$list"
}

# pg_set_listen VERSION CLUSTER VALUE: set listen_addresses in a conf.d file
# of ours (Debian's postgresql.conf ends with include_dir = 'conf.d'), or at
# the end of postgresql.conf if it has no such include. (pg_conftool would
# write 127.0.0.1 unquoted, which PostgreSQL rejects.)
pg_set_listen() {
  local confdir="/etc/postgresql/$1/$2" line="listen_addresses = '$3'"
  if grep -Eq "^[[:space:]]*include_dir[[:space:]]*=?[[:space:]]*'conf\.d'" "$confdir/postgresql.conf"; then
    mkdir -p "$confdir/conf.d"
    printf '# Written by herald scripts/services.sh\n%s\n' "$line" >"$confdir/conf.d/herald-listen.conf"
  else
    printf '\n# Added by herald scripts/services.sh\n%s\n' "$line" >>"$confdir/postgresql.conf"
  fi
}

ensure_postgres_running() {
  if pg_up; then
    say "PostgreSQL: already accepting connections on $PG_HOST:$PG_PORT, using it"
    return 0
  fi
  is_root || die "PostgreSQL is not answering on $PG_HOST:$PG_PORT and starting it needs root; start it yourself or rerun as root"
  command -v pg_ctlcluster >/dev/null 2>&1 || die "pg_ctlcluster not found although postgresql is installed"

  local ver cluster found
  found="$(pg_cluster_on_port)"
  if [ -n "$found" ]; then
    read -r ver cluster <<<"$found"
  else
    ver="$(pg_newest_version)"
    [ -n "$ver" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
    cluster=main
    if [ -d "/etc/postgresql/$ver/$cluster" ]; then
      die "cluster $ver/$cluster exists but is not configured for port $PG_PORT (see pg_lsclusters); set port = $PG_PORT in /etc/postgresql/$ver/$cluster/postgresql.conf"
    fi
    say "PostgreSQL: creating cluster $ver/$cluster on port $PG_PORT"
    LANG=C.UTF-8 LC_ALL=C.UTF-8 pg_createcluster --locale=C.UTF-8 --encoding=UTF8 -p "$PG_PORT" "$ver" "$cluster" >/dev/null ||
      die "pg_createcluster $ver $cluster failed"
  fi

  # Make sure it listens on 127.0.0.1: Debian's default is 'localhost', which
  # only works when localhost resolves to 127.0.0.1.
  local listen
  local listen localhost_addrs
  listen="$(pg_conftool -s "$ver" "$cluster" show listen_addresses 2>/dev/null || true)"
  if [ -e "/etc/postgresql/$ver/$cluster/conf.d/herald-listen.conf" ]; then
    listen=127.0.0.1 # set by an earlier run
  fi
  listen="${listen//\'/}"
  case "$listen" in
    *'*'*|*127.0.0.1*) ;;
    ''|localhost)
      # /etc/hosts first: getent (AI_ADDRCONFIG) finds nothing for
      # localhost when loopback is the only interface.
      localhost_addrs="$(awk '$1 == "127.0.0.1" { for (i = 2; i <= NF; i++) if ($i == "localhost") print $1 }' /etc/hosts 2>/dev/null || true)"
      [ -n "$localhost_addrs" ] || localhost_addrs="$(getent ahostsv4 localhost 2>/dev/null || true)"
      if ! [[ "$localhost_addrs" =~ (^|$'\n')127\.0\.0\.1([[:space:]]|$) ]]; then
        say "PostgreSQL: cannot tell that localhost is 127.0.0.1, setting listen_addresses = '127.0.0.1'"
        pg_set_listen "$ver" "$cluster" 127.0.0.1
      fi ;;
    *)
      say "PostgreSQL: listen_addresses was '$listen', adding 127.0.0.1"
      pg_set_listen "$ver" "$cluster" "$listen,127.0.0.1" ;;
  esac

  say "PostgreSQL: starting cluster $ver/$cluster"
  local out
  if ! out="$(pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start 2>&1)"; then
    echo "$out" >&2
    # "already running" is fine (it may still be starting up); a cluster
    # that is down after a failed start will not come up by waiting.
    local status
    status="$(pg_lsclusters -h "$ver" "$cluster" 2>/dev/null || true)"
    if [[ "$status" != *online* ]]; then
      die "pg_ctlcluster $ver $cluster start failed (output above); see /var/log/postgresql/postgresql-$ver-$cluster.log"
    fi
  fi
  if ! wait_for "PostgreSQL" pg_up; then
    die "PostgreSQL $ver/$cluster did not accept connections on $PG_HOST:$PG_PORT within ${WAIT_SECONDS}s; see /var/log/postgresql/postgresql-$ver-$cluster.log"
  fi
  say "PostgreSQL: cluster $ver/$cluster accepting connections on $PG_HOST:$PG_PORT"
}

# psql_super ARGS...: run psql as the postgres superuser on database postgres.
PSQL_MODE=""
psql_super() {
  case "$PSQL_MODE" in
    tcp)  PGCONNECT_TIMEOUT=5 psql -X -w -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres "$@" ;;
    peer) (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@") ;;
    *) die "internal: PSQL_MODE unset" ;;
  esac
}

pick_psql_mode() {
  PSQL_MODE=tcp
  if psql_super -Atc 'select 1' >/dev/null 2>&1; then return 0; fi
  if is_root && command -v runuser >/dev/null 2>&1 && id postgres >/dev/null 2>&1; then
    PSQL_MODE=peer
    if psql_super -Atc 'select 1' >/dev/null 2>&1; then return 0; fi
  fi
  PSQL_MODE=""
  return 1
}

# Creates the role herald and the database herald if they are missing, and
# changes nothing that exists: an existing role keeps its password and
# attributes, an existing database its owner. (This script may touch a server
# that is not only Herald's.) What would stop Herald or the tests is reported,
# with the statement to run, but not done.
ensure_role_and_db() {
  if ! pick_psql_mode; then
    die "cannot connect as the PostgreSQL superuser (tried 'psql -h $PG_HOST -U postgres' and, as root, 'runuser -u postgres -- psql'). Create them yourself:
  CREATE ROLE herald LOGIN CREATEDB PASSWORD 'herald';
  CREATE DATABASE herald OWNER herald;"
  fi
  local how="psql -h $PG_HOST -U postgres"
  [ "$PSQL_MODE" = peer ] && how="runuser -u postgres -- psql"

  local role
  role="$(psql_super -Atc "SELECT rolcanlogin::text || ' ' || rolcreatedb::text FROM pg_roles WHERE rolname = 'herald'")"
  if [ -z "$role" ]; then
    psql_super -c "CREATE ROLE herald LOGIN CREATEDB PASSWORD 'herald'"
    say "PostgreSQL: created role herald (LOGIN CREATEDB, password herald) via $how"
  else
    say "PostgreSQL: role herald present, left as it is"
    [ "${role%% *}" = true ] || warn "role herald cannot log in; to allow it: ALTER ROLE herald LOGIN"
    [ "${role##* }" = true ] || warn "role herald lacks CREATEDB, which the tests need (each creates its own database); to grant it: ALTER ROLE herald CREATEDB"
  fi

  local db_exists
  db_exists="$(psql_super -Atc "SELECT 1 FROM pg_database WHERE datname = 'herald'")"
  if [ "$db_exists" = 1 ]; then
    say "PostgreSQL: database herald present, left as it is"
  else
    local enc
    enc="$(psql_super -Atc "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'template1'")"
    if [ "$enc" = UTF8 ]; then
      psql_super -c "CREATE DATABASE herald OWNER herald"
    else
      psql_super -c "CREATE DATABASE herald OWNER herald TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
    fi
    say "PostgreSQL: created database herald owned by herald"
  fi

  # The default URL must log in; if a role that was already there has another
  # password, say so rather than change it.
  if ! PGPASSWORD=herald PGCONNECT_TIMEOUT=5 psql -X -w -q -h "$PG_HOST" -p "$PG_PORT" -U herald -d herald -Atc 'SELECT 1' >/dev/null 2>&1; then
    warn "cannot log in as herald with password herald on $PG_HOST:$PG_PORT (the role's password differs, or pg_hba.conf refuses it).
  This script never changes an existing password. Either point Herald and the tests elsewhere:
    export HERALD_DATABASE_URL='postgres://herald:PASSWORD@$PG_HOST:$PG_PORT/herald?sslmode=disable'
  or, if this server is only for development, set it yourself: ALTER ROLE herald PASSWORD 'herald';"
  fi
}

# --------------------------------------------------------------- mosquitto --
ensure_mosquitto() {
  local bin
  bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
  [ -x "$bin" ] || die "mosquitto binary not found after install"

  if mqtt_up; then
    say "Mosquitto: already accepting connections on $MQTT_HOST:$MQTT_PORT, using it ($bin is installed for the tests' private brokers)"
    return 0
  fi

  mkdir -p "$DEV_DIR"
  local conf="$DEV_DIR/mosquitto.conf" log="$DEV_DIR/mosquitto.log"
  cat >"$conf" <<EOF
# Written by scripts/services.sh: Herald's local development broker.
listener $MQTT_PORT $MQTT_HOST
allow_anonymous true
set_tcp_nodelay true
max_queued_messages 100000
persistence false
log_dest stderr
log_type error
log_type warning
log_type information
EOF
  say "Mosquitto: starting $bin -c $conf (log: $log)"
  setsid "$bin" -c "$conf" >>"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$DEV_DIR/mosquitto.pid"
  if ! wait_for "Mosquitto" mqtt_up; then
    tail -n 20 "$log" >&2 || true
    die "Mosquitto did not accept connections on $MQTT_HOST:$MQTT_PORT within ${WAIT_SECONDS}s; see $log"
  fi
  say "Mosquitto: broker (pid $pid) accepting connections on $MQTT_HOST:$MQTT_PORT"
}

# -------------------------------------------------------------------- node --
# ensure_node checks what the TypeScript client's tests need: npm, and a
# Node.js of version 18 or later (Debian 12's nodejs is 18).
ensure_node() {
  command -v npm >/dev/null 2>&1 || die "npm not found; the TypeScript client's tests need it"
  local version
  version="$(node --version 2>/dev/null || true)"
  version="${version#v}"
  [ "${version%%.*}" -ge 18 ] 2>/dev/null ||
    die "Node.js ${version:-not found}: the TypeScript client needs 18 or later"
  say "Node.js $version, npm $(npm --version)"
}

# -------------------------------------------------------------------- main --
main() {
  local pkgs
  pkgs="$(plan_packages)"
  if [ -n "$pkgs" ]; then
    # shellcheck disable=SC2086
    apt_install $pkgs
  else
    say "packages: nothing to install"
  fi
  ensure_postgres_running
  ensure_role_and_db
  ensure_mosquitto
  if [ "$WITH_CC" -eq 1 ]; then
    command -v gcc >/dev/null 2>&1 || die "gcc not found; go test -race needs a C compiler"
  fi
  if [ "$WITH_NODE" -eq 1 ]; then
    ensure_node
  fi
  say "ready: postgres://herald:herald@$PG_HOST:$PG_PORT/herald  tcp://$MQTT_HOST:$MQTT_PORT"
}

main
