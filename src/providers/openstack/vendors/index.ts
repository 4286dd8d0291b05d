/**
 * openstacksdk's vendor profiles as shipped with Formwork (see NOTICE.md), by vendor name.
 * Imported as JSON so that they travel in the bundle; nothing reads these files at runtime.
 *
 * @example
 *   import { SHIPPED_VENDOR_PROFILES } from './vendors/index.js';
 *   SHIPPED_VENDOR_PROFILES.auro; // { name: 'auro', profile: { auth: { auth_url: ... }, ... } }
 */
import auro from './auro.json' with { type: 'json' };
import betacloud from './betacloud.json' with { type: 'json' };
import binero from './binero.json' with { type: 'json' };
import bluebox from './bluebox.json' with { type: 'json' };
import catalyst from './catalyst.json' with { type: 'json' };
import citycloud from './citycloud.json' with { type: 'json' };
import conoha from './conoha.json' with { type: 'json' };
import dreamcompute from './dreamcompute.json' with { type: 'json' };
import elastx from './elastx.json' with { type: 'json' };
import entercloudsuite from './entercloudsuite.json' with { type: 'json' };
import fuga from './fuga.json' with { type: 'json' };
import ibmcloud from './ibmcloud.json' with { type: 'json' };
import internap from './internap.json' with { type: 'json' };
import limestonenetworks from './limestonenetworks.json' with { type: 'json' };
import otc_swiss from './otc-swiss.json' with { type: 'json' };
import otc from './otc.json' with { type: 'json' };
import ovh_us from './ovh-us.json' with { type: 'json' };
import ovh from './ovh.json' with { type: 'json' };
import rackspace from './rackspace.json' with { type: 'json' };
import switchcloud from './switchcloud.json' with { type: 'json' };
import switchengines from './switchengines.json' with { type: 'json' };
import ultimum from './ultimum.json' with { type: 'json' };
import unitedstack from './unitedstack.json' with { type: 'json' };
import vexxhost from './vexxhost.json' with { type: 'json' };
import zetta from './zetta.json' with { type: 'json' };

/**
 * Every shipped profile, by the file's name (which is also its `name`).
 *
 * @example
 *   Object.keys(SHIPPED_VENDOR_PROFILES).length; // 25
 */
export const SHIPPED_VENDOR_PROFILES: Readonly<Record<string, unknown>> = {
  auro: auro,
  betacloud: betacloud,
  binero: binero,
  bluebox: bluebox,
  catalyst: catalyst,
  citycloud: citycloud,
  conoha: conoha,
  dreamcompute: dreamcompute,
  elastx: elastx,
  entercloudsuite: entercloudsuite,
  fuga: fuga,
  ibmcloud: ibmcloud,
  internap: internap,
  limestonenetworks: limestonenetworks,
  'otc-swiss': otc_swiss,
  otc: otc,
  'ovh-us': ovh_us,
  ovh: ovh,
  rackspace: rackspace,
  switchcloud: switchcloud,
  switchengines: switchengines,
  ultimum: ultimum,
  unitedstack: unitedstack,
  vexxhost: vexxhost,
  zetta: zetta,
};
