#!/usr/bin/env bash
# Writes every service's configuration into the scratch folder $DIR (sourced by start.sh,
# which sets DIR, PW (the services' password), DB_SOCKET, AMQP_PORT and KEYSTONE).
# Everything listens on 127.0.0.1; MariaDB on its unix socket only.

db_url() { echo "mysql+pymysql://openstack:$PW@localhost/$1?unix_socket=$DB_SOCKET&charset=utf8"; }
TRANSPORT="rabbit://guest:guest@127.0.0.1:$AMQP_PORT/"

# The [keystone_authtoken] section of a service checking tokens as the `formwork-service` user.
authtoken() {
  cat <<CONF
[keystone_authtoken]
www_authenticate_uri = $KEYSTONE
auth_url = $KEYSTONE
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = formwork-service
password = $PW
region_name = RegionOne
service_token_roles_required = true
interface = public
CONF
}

# A [section] for one service calling another as the service user.
service_auth() {
  cat <<CONF
[$1]
auth_url = $KEYSTONE
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = formwork-service
password = $PW
region_name = RegionOne
valid_interfaces = public
CONF
}

mkdir -p "$DIR"/{keystone/fernet-keys,keystone/credential-keys,glance/images,glance/cache,placement,nova/instances,neutron,locks,logs,run}

cat > "$DIR/keystone/keystone.conf" <<CONF
[DEFAULT]
log_dir = $DIR/logs
[database]
connection = $(db_url keystone)
[token]
provider = fernet
[fernet_tokens]
key_repository = $DIR/keystone/fernet-keys
[fernet_receipts]
key_repository = $DIR/keystone/fernet-keys
[credential]
key_repository = $DIR/keystone/credential-keys
[oslo_messaging_notifications]
driver = noop
CONF

cat > "$DIR/glance/glance-api.conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9292
workers = 1
log_file = $DIR/logs/glance-api.log
image_cache_dir = $DIR/glance/cache
[database]
connection = $(db_url glance)
[glance_store]
stores = file
default_store = file
filesystem_store_datadir = $DIR/glance/images
[paste_deploy]
flavor = keystone
[oslo_messaging_notifications]
driver = noop
[oslo_concurrency]
lock_path = $DIR/locks
$(authtoken)
CONF
cp /etc/glance/glance-api-paste.ini "$DIR/glance/"

cat > "$DIR/placement/placement.conf" <<CONF
[DEFAULT]
log_dir = $DIR/logs
[placement_database]
connection = $(db_url placement)
[api]
auth_strategy = keystone
$(authtoken)
CONF

cat > "$DIR/nova/nova.conf" <<CONF
[DEFAULT]
host = formwork-fake
my_ip = 127.0.0.1
state_path = $DIR/nova
instances_path = $DIR/nova/instances
log_dir = $DIR/logs
transport_url = $TRANSPORT
compute_driver = fake.FakeDriver
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_workers = 1
metadata_workers = 1
[api]
auth_strategy = keystone
[api_database]
connection = $(db_url nova_api)
[database]
connection = $(db_url nova)
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = -1
[vnc]
enabled = false
[oslo_concurrency]
lock_path = $DIR/locks
[oslo_messaging_notifications]
driver = noop
$(authtoken)
$(service_auth placement)
$(service_auth neutron)
[glance]
valid_interfaces = public
region_name = RegionOne
CONF
cp /etc/nova/api-paste.ini "$DIR/nova/"

cat > "$DIR/neutron/neutron.conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9696
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
allow_overlapping_ips = true
transport_url = $TRANSPORT
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 0
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
log_file = $DIR/logs/neutron-server.log
state_path = $DIR/neutron
[database]
connection = $(db_url neutron)
[oslo_concurrency]
lock_path = $DIR/locks
[oslo_messaging_notifications]
driver = noop
$(authtoken)
CONF
cat > "$DIR/neutron/ml2_conf.ini" <<CONF
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = formwork_fake
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
[ml2_type_vxlan]
vni_ranges = 1:1000
CONF
cp /etc/neutron/api-paste.ini "$DIR/neutron/"
