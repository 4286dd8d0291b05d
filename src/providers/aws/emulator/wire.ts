/**
 * The EC2 Query API's wire format, as the emulator speaks it: a request is a form-encoded
 * POST (`Action=RunInstances&Version=2016-11-15&InstanceId.1=…`), an answer is XML in the
 * 2016-11-15 namespace with a `<requestId>`, and a refusal is
 * `<Response><Errors><Error><Code>…</Code><Message>…</Message></Error></Errors><RequestID>…</RequestID></Response>`
 * with AWS's HTTP status (the shapes of ../shared/fixtures/libcloud/ec2/*.xml).
 *
 * @example
 *   const q = new QueryParams('Action=DescribeInstances&InstanceId.1=i-1');
 *   q.list('InstanceId'); // ['i-1']
 *   ec2Xml('DescribeInstancesResponse', { reservationSet: [] }); // '<?xml …><DescribeInstancesResponse xmlns=…>'
 */
import { randomUUID } from 'node:crypto';

/** The EC2 API version and XML namespace the emulator answers in. @example `<DescribeRegionsResponse xmlns="${EC2_NAMESPACE}">` */
export const EC2_NAMESPACE = 'http://ec2.amazonaws.com/doc/2016-11-15/';

/** An XML value: an object is elements in key order, an array is `<item>`s, undefined is left out. @example const v: XmlValue = { instancesSet: [{ instanceId: 'i-1' }] }; // <instancesSet><item><instanceId>i-1</instanceId></item></instancesSet> */
export type XmlValue = string | number | boolean | undefined | null | XmlValue[] | { [k: string]: XmlValue };

/** An answer of the emulator: status, XML text, extra headers. @example const a: Ec2Answer = { status: 200, body: '<…/>' }; */
export interface Ec2Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function render(v: XmlValue): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.map((item) => `<item>${render(item)}</item>`).join('');
  if (typeof v === 'object') return Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => `<${k}>${render(x)}</${k}>`).join('');
  return escape(String(v));
}

/**
 * A successful answer: `<ActionResponse xmlns=…><requestId>…</requestId>…</ActionResponse>`.
 *
 * @example
 *   ec2Xml('CreateTagsResponse', { return: true });
 */
export function ec2Xml(root: string, body: Record<string, XmlValue>): Ec2Answer {
  return { status: 200, body: `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${EC2_NAMESPACE}"><requestId>${randomUUID()}</requestId>${render(body)}</${root}>` };
}

/** An EC2 refusal (see the file's comment), thrown by action handlers and answered by the server. @example throw new Ec2Error(503, 'RequestLimitExceeded', 'Request limit exceeded.', { 'Retry-After': '1' }); */
export class Ec2Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  /** The refusal as EC2 sends it. */
  answer(): Ec2Answer {
    return {
      status: this.status,
      headers: this.headers,
      body: `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${escape(this.code)}</Code><Message>${escape(this.message)}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`,
    };
  }
}

/**
 * A malformed or invalid parameter (400 `InvalidParameterValue` unless another code is given).
 *
 * @example
 *   throw invalid(`Invalid value 'x1.huge' for InstanceType.`);
 */
export function invalid(message: string, code = 'InvalidParameterValue'): Ec2Error {
  return new Ec2Error(400, code, message);
}

/** A filter of a Describe call: `Filter.N.Name` with its `Filter.N.Value.M`s. @example q.filters(); // [{ name: 'tag:formwork.io/provider', values: ['aws1'] }] */
export interface QueryFilter {
  name: string;
  values: string[];
}

/**
 * The parameters of a Query API request, with EC2's numbered lists (`InstanceId.1`,
 * `Filter.1.Value.2`, `TagSpecification.1.Tag.1.Key`).
 *
 * @example
 *   new QueryParams('Filter.1.Name=tag-key&Filter.1.Value.1=a').filters(); // [{ name: 'tag-key', values: ['a'] }]
 */
export class QueryParams {
  readonly raw: URLSearchParams;

  constructor(body: string) {
    this.raw = new URLSearchParams(body);
  }

  get(name: string): string | undefined {
    return this.raw.get(name) ?? undefined;
  }

  /** A required parameter, or EC2's MissingParameter. */
  required(name: string): string {
    const v = this.get(name);
    if (v === undefined || v === '') throw invalid(`The request must contain the parameter ${name}`, 'MissingParameter');
    return v;
  }

  /** The values of `Prefix.1`, `Prefix.2`, … in order. */
  list(prefix: string): string[] {
    const out: string[] = [];
    for (let i = 1; this.raw.has(`${prefix}.${i}`); i++) out.push(this.raw.get(`${prefix}.${i}`)!);
    return out;
  }

  /** The indexes N with some `Prefix.N.*` parameter, in order. */
  indexes(prefix: string): number[] {
    const found = new Set<number>();
    const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)(\\.|$)`);
    for (const k of this.raw.keys()) {
      const m = re.exec(k);
      if (m) found.add(Number(m[1]));
    }
    return [...found].sort((a, b) => a - b);
  }

  /** `Filter.N.Name` / `Filter.N.Value.M`. */
  filters(): QueryFilter[] {
    return this.indexes('Filter').map((i) => ({ name: this.get(`Filter.${i}.Name`) ?? '', values: this.list(`Filter.${i}.Value`) }));
  }

  /** The tags of `TagSpecification.N` for one resource type. */
  tagsFor(resourceType: string): Record<string, string> {
    const tags: Record<string, string> = {};
    for (const i of this.indexes('TagSpecification')) {
      if (this.get(`TagSpecification.${i}.ResourceType`) !== resourceType) continue;
      Object.assign(tags, this.tagList(`TagSpecification.${i}.Tag`));
    }
    return tags;
  }

  /** `Prefix.N.Key` / `Prefix.N.Value` pairs. */
  tagList(prefix: string): Record<string, string> {
    const tags: Record<string, string> = {};
    for (const j of this.indexes(prefix)) {
      const k = this.get(`${prefix}.${j}.Key`);
      if (k !== undefined) tags[k] = this.get(`${prefix}.${j}.Value`) ?? '';
    }
    return tags;
  }
}

/**
 * Tags as EC2 answers them (`tagSet` items).
 *
 * @example
 *   tagSet({ Name: 'web' }); // [{ key: 'Name', value: 'web' }]
 */
export function tagSet(tags: Record<string, string>): XmlValue[] {
  return Object.entries(tags).map(([key, value]) => ({ key, value }));
}

/**
 * Whether tags pass the tag filters of a Describe call (`tag:K`, `tag-key`); other filters are the caller's.
 *
 * @example
 *   matchesTagFilters({ a: '1' }, [{ name: 'tag:a', values: ['1'] }]); // true
 */
export function matchesTagFilters(tags: Record<string, string>, filters: QueryFilter[]): boolean {
  for (const f of filters) {
    if (f.name.startsWith('tag:')) {
      const v = tags[f.name.slice(4)];
      if (v === undefined || !f.values.some((x) => globMatch(x, v))) return false;
    } else if (f.name === 'tag-key') {
      if (!f.values.some((k) => k in tags)) return false;
    }
  }
  return true;
}

/**
 * EC2's filter wildcards: `*` any run, `?` one character.
 *
 * @example
 *   globMatch('debian-12-*', 'debian-12-amd64-20240717-1811'); // true
 */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(value);
}
