"""An ML2 mechanism driver for a control plane without agents (Formwork's CI).

With no L2 agent nothing binds ports, so Nova's servers would all go ERROR
(PortBindingFailed); and with no L3 agent floating IPs stay DOWN forever. This driver
binds every port itself (status ACTIVE) and sets a floating IP ACTIVE when it is
associated with a port and DOWN when it is released, as an L3 agent would report.
Registered through the `neutron.ml2.mechanism_drivers` entry point `formwork_fake`.
"""
from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.callbacks import events, registry, resources
from neutron_lib.plugins import constants as plugin_constants
from neutron_lib.plugins import directory
from neutron_lib.plugins.ml2 import api
from oslo_log import log

LOG = log.getLogger(__name__)


class FormworkFakeMechanismDriver(api.MechanismDriver):
    def initialize(self):
        for event in (events.AFTER_CREATE, events.AFTER_UPDATE):
            registry.subscribe(self._floating_ip_changed, resources.FLOATING_IP, event)

    def bind_port(self, context):
        # Bind on the first segment offered: there is no agent whose mappings could refuse it.
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OTHER, {},
                                status=constants.PORT_STATUS_ACTIVE)
            return

    def _floating_ip_changed(self, resource, event, trigger, payload=None):
        fip = payload.latest_state if payload is not None else None
        if not fip or not fip.get('id'):
            return
        status = constants.FLOATINGIP_STATUS_ACTIVE if fip.get('port_id') else constants.FLOATINGIP_STATUS_DOWN
        if fip.get('status') == status:
            return
        l3 = directory.get_plugin(plugin_constants.L3)
        l3.update_floatingip_status(payload.context.elevated(), fip['id'], status)
        LOG.info('formwork_fake: floating IP %s is now %s', fip['id'], status)
