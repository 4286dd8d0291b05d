#!/usr/bin/env bash
# Starts a real OpenStack control plane (Keystone, Glance, Placement, Nova with its fake compute
# driver, Neutron with ML2 and no agents; MariaDB and RabbitMQ) from Debian 12's packages
# (scripts/openstack/setup.sh), every listener on 127.0.0.1, everything written into DIR:
# configs, databases, logs, DIR/pids (one "name pid" a line, for stop.sh) and DIR/clouds.yaml
# (clouds `admin` and `demo`). Then it fills the cloud: flavors, an image with properties, an
# external flat network `public`, a tenant network `private` with a router to it, and a network
# `isolated` with no router. Usage: scripts/openstack/start.sh DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"; DIR=$(cd "$1" && pwd)
[ ! -s "$DIR/pids" ] || { echo "error: $DIR/pids exists: a control plane may be running there; run stop.sh $DIR first" >&2; exit 1; }
# Debian's own Python and tools, never a pyenv or venv one found on PATH.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
export HOME="$DIR/home"; mkdir -p "$HOME"

AMQP_PORT=${FORMWORK_OS_AMQP_PORT:-35672}
EPMD_PORT=${FORMWORK_OS_EPMD_PORT:-35674}
DIST_PORT=${FORMWORK_OS_DIST_PORT:-35673}
KEYSTONE=http://127.0.0.1:5000
DB_SOCKET="$DIR/mysql/mysqld.sock"
PW=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
started=$(date +%s)
log() { echo "openstack start [$(( $(date +%s) - started ))s]: $*"; }

# A failed start leaves nothing running: stop.sh ends whatever was recorded so far.
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "openstack start failed (logs in $DIR/logs); stopping what started" >&2; "$HERE/stop.sh" "$DIR" || true; fi' EXIT

# Runs a service in its own session (so stop.sh can end it with its children) and records its PID.
run() {
  local name=$1; shift
  setsid "$@" >"$DIR/logs/$name.out" 2>&1 < /dev/null &
  echo "$name $!" >> "$DIR/pids"
}

# Waits until a command succeeds, naming the service and its log when it does not in time.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "error: $what not ready after ${seconds}s (see $DIR/logs)" >&2; return 1; }
    sleep 0.5
  done
}
http_up() { curl -s -o /dev/null -m 2 "$1"; }
uwsgi_app() {
  local name=$1 port=$2 script=$3; shift 3
  run "$name" uwsgi --plugin python3 --http-socket "127.0.0.1:$port" --wsgi-file "$script" \
    --master --die-on-term --processes 1 --threads 4 --enable-threads --lazy-apps --buffer-size 65535 \
    --add-header "Connection: close" "$@"
}

mkdir -p "$DIR/logs" "$DIR/run"
: > "$DIR/pids"
source "$HERE/write-configs.sh"

log "MariaDB on $DB_SOCKET (no TCP)"
mkdir -p "$DIR/mysql/data"
mariadb-install-db --no-defaults --datadir="$DIR/mysql/data" --user=root --auth-root-authentication-method=socket \
  --skip-test-db > "$DIR/logs/mariadb-install.log" 2>&1
run mariadb mariadbd --no-defaults --user=root --datadir="$DIR/mysql/data" --socket="$DB_SOCKET" --skip-networking \
  --pid-file="$DIR/run/mariadb.pid" --log-error="$DIR/logs/mariadb.log" --innodb-buffer-pool-size=64M --max-connections=300
wait_for MariaDB 60 mariadb --socket="$DB_SOCKET" -uroot -e 'select 1'

log "RabbitMQ on 127.0.0.1:$AMQP_PORT (epmd on $EPMD_PORT)"
mkdir -p "$DIR/rabbitmq/mnesia" "$DIR/rabbitmq/home"
head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/rabbitmq/home/.erlang.cookie"
chmod 400 "$DIR/rabbitmq/home/.erlang.cookie"
echo '[].' > "$DIR/rabbitmq/enabled_plugins"
printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users.guest = true\nlog.console = true\nlog.file = false\n' "$AMQP_PORT" > "$DIR/rabbitmq/rabbitmq.conf"
export ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
run epmd epmd -port "$EPMD_PORT" -address 127.0.0.1
wait_for epmd 10 epmd -port "$EPMD_PORT" -names
# The real server script, not /usr/sbin's wrapper (which switches to the rabbitmq user).
run rabbitmq env HOME="$DIR/rabbitmq/home" ERL_CRASH_DUMP="$DIR/logs/erl_crash.dump" RABBITMQ_NODENAME=formwork-os@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_NODE_PORT="$AMQP_PORT" RABBITMQ_DIST_PORT="$DIST_PORT" RABBITMQ_MNESIA_BASE="$DIR/rabbitmq/mnesia" \
  RABBITMQ_LOG_BASE="$DIR/logs" RABBITMQ_CONFIG_FILE="$DIR/rabbitmq/rabbitmq.conf" \
  RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/rabbitmq/enabled_plugins" RABBITMQ_PID_FILE="$DIR/run/rabbitmq.pid" \
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
  /usr/lib/rabbitmq/bin/rabbitmq-server

log "databases"
sql="CREATE USER IF NOT EXISTS 'openstack'@'localhost' IDENTIFIED BY '$PW';"
for db in keystone glance placement nova_api nova nova_cell0 neutron; do
  sql+="CREATE DATABASE IF NOT EXISTS $db CHARACTER SET utf8; GRANT ALL ON $db.* TO 'openstack'@'localhost';"
done
mariadb --socket="$DB_SOCKET" -uroot -e "$sql"

log "Keystone"
keystone-manage --config-file "$DIR/keystone/keystone.conf" db_sync >> "$DIR/logs/keystone-manage.out" 2>&1
keystone-manage --config-file "$DIR/keystone/keystone.conf" fernet_setup --keystone-user root --keystone-group root >> "$DIR/logs/keystone-manage.out" 2>&1
keystone-manage --config-file "$DIR/keystone/keystone.conf" credential_setup --keystone-user root --keystone-group root >> "$DIR/logs/keystone-manage.out" 2>&1
keystone-manage --config-file "$DIR/keystone/keystone.conf" bootstrap --bootstrap-password "$PW" \
  --bootstrap-public-url "$KEYSTONE/v3/" --bootstrap-region-id RegionOne >> "$DIR/logs/keystone-manage.out" 2>&1
uwsgi_app keystone 5000 /usr/bin/keystone-wsgi-public --env "OS_KEYSTONE_CONFIG_DIR=$DIR/keystone"

log "database schemas (Glance, Placement, Nova, Neutron)"
glance-manage --config-file "$DIR/glance/glance-api.conf" db_sync > "$DIR/logs/glance-db-sync.log" 2>&1 &
g=$!
placement-manage --config-file "$DIR/placement/placement.conf" db sync > "$DIR/logs/placement-db-sync.log" 2>&1 &
p=$!
PYTHONPATH="$HERE/ml2" neutron-db-manage --config-file "$DIR/neutron/neutron.conf" --config-file "$DIR/neutron/ml2_conf.ini" upgrade heads > "$DIR/logs/neutron-db-sync.log" 2>&1 &
n=$!
nova_manage() { nova-manage --config-file "$DIR/nova/nova.conf" "$@"; }
{
  nova_manage api_db sync
  nova_manage cell_v2 map_cell0 --database_connection "$(db_url nova_cell0)"
  nova_manage cell_v2 create_cell --name cell1 --verbose
  nova_manage db sync
} > "$DIR/logs/nova-db-sync.log" 2>&1
wait "$g"; wait "$p"; wait "$n"

log "service user, catalog"
wait_for Keystone 60 http_up "$KEYSTONE/v3"
export OS_AUTH_URL="$KEYSTONE/v3" OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne OS_INTERFACE=public \
  OS_USERNAME=admin OS_PASSWORD="$PW" OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
"$HERE/register-catalog.sh" "$PW" > "$DIR/logs/register-catalog.log" 2>&1

log "Glance, Placement, Nova, Neutron"
run glance-api glance-api --config-file "$DIR/glance/glance-api.conf"
uwsgi_app placement 8778 /usr/bin/placement-api --env "OS_PLACEMENT_CONFIG_DIR=$DIR/placement"
uwsgi_app nova-api 8774 /usr/bin/nova-api-wsgi --env "OS_NOVA_CONFIG_DIR=$DIR/nova"
run nova-conductor nova-conductor --config-file "$DIR/nova/nova.conf"
run nova-scheduler nova-scheduler --config-file "$DIR/nova/nova.conf"
run nova-compute nova-compute --config-file "$DIR/nova/nova.conf"
# The ML2 driver is found through its entry point in scripts/openstack/ml2 (a dist-info beside the module).
run neutron-server env PYTHONPATH="$HERE/ml2" neutron-server --config-file "$DIR/neutron/neutron.conf" --config-file "$DIR/neutron/ml2_conf.ini"
wait_for Glance 90 http_up http://127.0.0.1:9292/
wait_for Placement 90 http_up http://127.0.0.1:8778/
wait_for Nova 90 http_up http://127.0.0.1:8774/
wait_for Neutron 90 http_up http://127.0.0.1:9696/
# The fake compute host joins cell1 once nova-compute has registered itself.
wait_for "nova-compute in cell1" 120 bash -c "nova-manage --config-file '$DIR/nova/nova.conf' cell_v2 discover_hosts >/dev/null && nova-manage --config-file '$DIR/nova/nova.conf' cell_v2 list_hosts | grep -q formwork-fake"

log "flavors, image, networks"
cat > "$DIR/clouds.yaml" <<YAML
# Written by formwork scripts/openstack/start.sh: a loopback-only OpenStack for tests.
clouds:
  admin:
    auth:
      auth_url: $KEYSTONE/v3
      username: admin
      password: $PW
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  demo:
    auth:
      auth_url: $KEYSTONE/v3
      username: demo
      password: $PW
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
YAML
"$HERE/fill-cloud.sh" "$DIR" "$PW" > "$DIR/logs/fill-cloud.log" 2>&1
trap - EXIT
log "ready: OS_CLIENT_CONFIG_FILE=$DIR/clouds.yaml (clouds admin, demo); stop with scripts/openstack/stop.sh $DIR"
