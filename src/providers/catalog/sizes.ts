/**
 * Choosing a native size (instance type, flavor, plan) for a normalized request: a catalog
 * name (`small`, `medium`, `large`: CATALOG_SIZES, AWS-like, the yardstick), a native id, or a
 * shape `{cpus, ramMiB, diskGiB}`. Among the sizes that meet it, the cheapest when every one
 * has a price, else the smallest; the reason says which rule decided. `settings.sizes` maps a
 * catalog name to a native id and wins over everything.
 *
 * @example
 *   chooseSize('small', [{ nativeId: 't3.micro', cpus: 2, ramMiB: 1024 }, { nativeId: 't3.small', cpus: 2, ramMiB: 2048 }], { providerName: 'aws' });
 *   // { nativeId: 't3.small', normalized: 'small', reason: 'the smallest of 1 sizes meeting small (2 cpus, 2048 MiB RAM, 20 GiB disk); prices unknown' }
 */
import { FormworkError } from '../../core/errors.js';
import type { CatalogSize, ShapeRequest } from './types.js';

/** The normalized sizes every provider maps to (AWS's t3 family is the yardstick). */
export const CATALOG_SIZES: Readonly<Record<string, Required<ShapeRequest>>> = {
  small: { cpus: 2, ramMiB: 2048, diskGiB: 20 },
  medium: { cpus: 2, ramMiB: 4096, diskGiB: 20 },
  large: { cpus: 2, ramMiB: 8192, diskGiB: 40 },
  xlarge: { cpus: 4, ramMiB: 16384, diskGiB: 80 },
};

/** A chosen size and why. @example { nativeId: 't3.small', normalized: 'small', reason: 'the cheapest (0.0208/h) of 9 sizes meeting small (…)' } */
export interface SizeChoice {
  nativeId: string;
  /** The request as the node records it (`small`, `2cpu-4096mib-20gib`, or the native id). */
  normalized: string;
  reason: string;
}

/** Where the size is chosen. @example { providerName: 'aws-eu', overrides: { small: 't3a.small' }, zone: 'eu-west-1a' } */
export interface ChooseSizeOptions {
  providerName: string;
  /** `settings.sizes`: catalog name → native id. */
  overrides?: Record<string, string>;
  /** Only sizes offered in this zone. */
  zone?: string;
}

/** The normalized name of a shape request. @example shapeName({ cpus: 2, ramMiB: 4096, diskGiB: 20 }); // '2cpu-4096mib-20gib' */
export function shapeName(shape: ShapeRequest): string {
  return `${shape.cpus}cpu-${shape.ramMiB}mib${shape.diskGiB ? `-${shape.diskGiB}gib` : ''}`;
}

/** A shape name (`2cpu-4096mib-20gib`, as a node records a shape request) read back; undefined for any other text. @example parseShapeName('2cpu-4096mib'); // { cpus: 2, ramMiB: 4096 } */
export function parseShapeName(text: string): ShapeRequest | undefined {
  const m = /^(\d+)cpu-(\d+)mib(?:-(\d+)gib)?$/.exec(text);
  return m ? { cpus: Number(m[1]), ramMiB: Number(m[2]), ...(m[3] ? { diskGiB: Number(m[3]) } : {}) } : undefined;
}

/** Chooses the native size for `request` among `sizes`, or throws PROVIDER_INVALID naming what was asked, where it looked and the setting that fixes it. */
export function chooseSize(request: string | ShapeRequest, sizes: readonly CatalogSize[], opts: ChooseSizeOptions): SizeChoice {
  const shaped = typeof request === 'string' ? parseShapeName(request) : undefined;
  if (shaped && !opts.overrides?.[request as string]) return pick(request as string, describeShape(shaped), shaped, sizes, opts);
  if (typeof request === 'string') {
    const override = opts.overrides?.[request];
    if (override) return { nativeId: override, normalized: request, reason: `settings.sizes.${request} of provider ${opts.providerName}` };
    const native = sizes.find((s) => s.nativeId === request || s.name === request);
    if (native) return { nativeId: native.nativeId, normalized: request, reason: `the native size named ${request}` };
    const shape = CATALOG_SIZES[request];
    if (!shape) {
      throw new FormworkError(
        'PROVIDER_INVALID',
        `size "${request}" is neither a catalog size (${Object.keys(CATALOG_SIZES).join(', ')}) nor one of the ${sizes.length} native sizes of provider ${opts.providerName}; ask for {cpus, ramMiB, diskGiB}, or map it in settings.sizes.${request}`,
        { size: request, provider: opts.providerName, candidates: sizes.length, setting: `settings.sizes.${request}` },
        { retryable: false },
      );
    }
    return pick(request, `${request} (${describeShape(shape)})`, shape, sizes, opts);
  }
  return pick(shapeName(request), describeShape(request), request, sizes, opts);
}

function pick(normalized: string, asked: string, shape: ShapeRequest, sizes: readonly CatalogSize[], opts: ChooseSizeOptions): SizeChoice {
  const offered = opts.zone ? sizes.filter((s) => !s.zones || s.zones.includes(opts.zone!)) : [...sizes];
  const fitting = offered.filter((s) => s.cpus >= shape.cpus && s.ramMiB >= shape.ramMiB && (s.diskGiB === undefined || s.diskGiB >= (shape.diskGiB ?? 0)));
  if (!fitting.length) {
    const where = `${offered.length} sizes of provider ${opts.providerName}${opts.zone ? ` offered in zone ${opts.zone}` : ''}`;
    const hint = CATALOG_SIZES[normalized] ? `settings.sizes.${normalized} (a native size id)` : 'settings.sizes (a catalog name → a native size id)';
    throw new FormworkError('PROVIDER_INVALID', `no size meets ${asked} among the ${where}; ask for less, or name a native size in ${hint}`, {
      size: normalized,
      provider: opts.providerName,
      candidates: offered.length,
      setting: 'settings.sizes',
    }, { retryable: false });
  }
  const priced = fitting.every((s) => typeof s.price === 'number');
  const ranked = [...fitting].sort((a, b) => (priced ? a.price! - b.price! : 0) || smaller(a, b));
  const chosen = ranked[0]!;
  const rule = priced ? `the cheapest (${chosen.price}/h)` : 'the smallest';
  return {
    nativeId: chosen.nativeId,
    normalized,
    reason: `${rule} of ${fitting.length} sizes meeting ${asked}${priced ? '' : '; prices unknown'}`,
  };
}

// Smallest: least RAM, then fewest CPUs, then least disk, then by id (a stable order).
const smaller = (a: CatalogSize, b: CatalogSize) => a.ramMiB - b.ramMiB || a.cpus - b.cpus || (a.diskGiB ?? 0) - (b.diskGiB ?? 0) || a.nativeId.localeCompare(b.nativeId);

const describeShape = (s: ShapeRequest) => `${s.cpus} cpus, ${s.ramMiB} MiB RAM${s.diskGiB ? `, ${s.diskGiB} GiB disk` : ''}`;
