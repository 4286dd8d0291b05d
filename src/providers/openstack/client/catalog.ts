/**
 * Keystone v3's service catalog and the choice of an endpoint in it: by service type
 * (with the aliases clouds use, such as `volumev3` for `block-storage`), interface
 * (`public`, `internal`, `admin`) and region, unless an `endpoint_override` names the URL.
 * A choice that finds nothing says what the catalog does have, so a wrong region or
 * interface in clouds.yaml is fixed from the message alone.
 *
 * @example
 *   const url = selectEndpoint(token.catalog, { serviceType: 'compute', interface: 'public', region: 'RegionOne' });
 */
import { FormworkError } from '../../../core/errors.js';

/** One endpoint of a catalog entry. */
export interface CatalogEndpoint {
  url: string;
  interface: string;
  region?: string;
  region_id?: string;
}

/** One catalog entry: a service with its endpoints. */
export interface CatalogEntry {
  type: string;
  name?: string;
  endpoints: CatalogEndpoint[];
}

/** Which endpoint to use: the service, the interface and region, optional service name and override URL. */
export interface EndpointChoice {
  serviceType: string;
  interface?: 'public' | 'internal' | 'admin';
  region?: string;
  serviceName?: string;
  override?: string;
}

/**
 * Service types and the other names catalogs list them under (openstacksdk's service-types authority, abridged).
 *
 * @example
 *   SERVICE_TYPE_ALIASES['block-storage']; // ['block-storage', 'volumev3', 'volumev2', 'volume']
 */
export const SERVICE_TYPE_ALIASES: Readonly<Record<string, readonly string[]>> = {
  compute: ['compute'],
  network: ['network'],
  image: ['image'],
  identity: ['identity'],
  'block-storage': ['block-storage', 'volumev3', 'volumev2', 'volume'],
  placement: ['placement'],
};

/**
 * The URL to call for a service. An `override` wins (with `{region_name}` filled in);
 * otherwise the catalog's endpoint of that type, interface (default `public`) and region
 * (any, when no region is given and the service has endpoints in one region only).
 *
 * @example
 *   selectEndpoint(catalog, { serviceType: 'network', region: 'regionOne' }); // 'http://192.168.18.100:9696'
 */
export function selectEndpoint(catalog: readonly CatalogEntry[], choice: EndpointChoice): string {
  if (choice.override) return choice.override.replaceAll('{region_name}', choice.region ?? '');
  const wantInterface = choice.interface ?? 'public';
  const types = SERVICE_TYPE_ALIASES[choice.serviceType] ?? [choice.serviceType];
  const entries = catalog.filter((e) => types.includes(e.type) && (!choice.serviceName || e.name === choice.serviceName));
  if (entries.length === 0) {
    const known = [...new Set(catalog.map((e) => e.type))].sort().join(', ') || 'none';
    throw new FormworkError('PROVIDER_INVALID', `the cloud's catalog has no ${choice.serviceType} service${choice.serviceName ? ` named "${choice.serviceName}"` : ''} (it lists: ${known}); set ${choice.serviceType.replace('-', '_')}_endpoint_override in clouds.yaml if the service is elsewhere`, { serviceType: choice.serviceType, catalogTypes: known });
  }
  // The first alias the catalog has wins: volumev3 over volumev2.
  const ordered = [...entries].sort((a, b) => types.indexOf(a.type) - types.indexOf(b.type));
  const endpoints = ordered.flatMap((e) => e.endpoints);
  const regionOf = (e: CatalogEndpoint) => e.region_id ?? e.region;
  const regions = [...new Set(endpoints.map(regionOf).filter((r): r is string => !!r))];
  if (choice.region && !regions.includes(choice.region) && regions.length > 0) {
    throw new FormworkError('PROVIDER_INVALID', `region "${choice.region}" has no ${choice.serviceType} endpoint; the cloud's regions are: ${regions.join(', ')}. Set region_name to one of them`, { serviceType: choice.serviceType, region: choice.region, regions });
  }
  if (!choice.region && regions.length > 1) {
    throw new FormworkError('PROVIDER_INVALID', `the cloud has ${choice.serviceType} endpoints in several regions (${regions.join(', ')}): set region_name to one of them`, { serviceType: choice.serviceType, regions });
  }
  const inRegion = endpoints.filter((e) => !choice.region || regionOf(e) === choice.region || !regionOf(e));
  const match = inRegion.find((e) => e.interface === wantInterface);
  if (!match) {
    const interfaces = [...new Set(inRegion.map((e) => e.interface))].join(', ');
    throw new FormworkError('PROVIDER_INVALID', `the ${choice.serviceType} service has no ${wantInterface} endpoint${choice.region ? ` in region "${choice.region}"` : ''} (it has: ${interfaces}); set interface to one of them`, { serviceType: choice.serviceType, interface: wantInterface, interfaces });
  }
  return match.url;
}
