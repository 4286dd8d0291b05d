/**
 * What the emulated region offers, fixed: its zones, the default VPC with one default subnet
 * per zone (none maps public IPs: an instance is reachable only through an Elastic IP, as in
 * an account whose default subnets were changed, or a custom VPC), the official images of
 * Debian, Canonical and Amazon with what their instances are like (login user, root told
 * whom to log in as, Debian's hostname left unset), and four instance types.
 *
 * @example
 *   EMULATED_IMAGES.find((i) => i.name.startsWith('debian-12'))!.loginUser; // 'admin'
 */

/** An image of the emulated region, with how its instances behave. @example EMULATED_IMAGES[0].loginUser; // 'admin' */
export interface EmulatedImage {
  imageId: string;
  name: string;
  ownerId: string;
  ownerAlias?: string;
  description: string;
  creationDate: string;
  /** The one user that logs in with the key pair. */
  loginUser: string;
  /** Post-provisioning left half done: the hostname is not set. */
  halfProvisioned: boolean;
}

/** The official images (owners: Debian 136693071363, Canonical 099720109477, Amazon 137112412989). @example EMULATED_IMAGES.map((i) => i.name.split('-')[0]); // ['debian', 'ubuntu/images/hvm', 'al2023'] */
export const EMULATED_IMAGES: readonly EmulatedImage[] = [
  { imageId: 'ami-064519b8c76274859', name: 'debian-12-amd64-20240717-1811', ownerId: '136693071363', description: 'Debian 12 (20240717-1811)', creationDate: '2024-07-17T18:56:02.000Z', loginUser: 'admin', halfProvisioned: true },
  { imageId: 'ami-0e86e20dae9224db8', name: 'ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240701', ownerId: '099720109477', description: 'Canonical, Ubuntu, 22.04 LTS, amd64 jammy image build on 2024-07-01', creationDate: '2024-07-01T10:12:00.000Z', loginUser: 'ubuntu', halfProvisioned: false },
  { imageId: 'ami-0ae8f15ae66fe8cda', name: 'al2023-ami-2023.5.20240701.0-kernel-6.1-x86_64', ownerId: '137112412989', ownerAlias: 'amazon', description: 'Amazon Linux 2023 AMI 2023.5.20240701.0 x86_64 HVM kernel-6.1', creationDate: '2024-07-01T22:31:16.000Z', loginUser: 'ec2-user', halfProvisioned: false },
];

/** The instance types: vCPUs and MiB, as DescribeInstanceTypes reports them. @example EMULATED_INSTANCE_TYPES.find((t) => t.type === 't3.small')!.mib; // 2048 */
export const EMULATED_INSTANCE_TYPES: readonly { type: string; vcpus: number; mib: number }[] = [
  { type: 't3.micro', vcpus: 2, mib: 1024 },
  { type: 't3.small', vcpus: 2, mib: 2048 },
  { type: 't3.medium', vcpus: 2, mib: 4096 },
  { type: 'm5.large', vcpus: 2, mib: 8192 },
];

/** The zone letters of the emulated region. @example ZONE_SUFFIXES.map((s) => `us-east-1${s}`); */
export const ZONE_SUFFIXES = ['a', 'b', 'c'] as const;

/** The default VPC's id. @example describeVpcs(); // [{ vpcId: DEFAULT_VPC_ID, isDefault: true }] */
export const DEFAULT_VPC_ID = 'vpc-0f1e2d3c4b5a69788';

/**
 * The default subnet of a zone (`us-east-1b` → `subnet-0default00b`).
 *
 * @example
 *   defaultSubnetId('us-east-1a'); // 'subnet-0default00a'
 */
export function defaultSubnetId(zone: string): string {
  return `subnet-0default00${zone.slice(-1)}`;
}

/** What the root user is told on an image whose login user is another (EC2's cloud-init `disable_root`). @example rootLoginMessage('admin'); // 'Please login as the user "admin" rather than the user "root".' */
export function rootLoginMessage(user: string): string {
  return `Please login as the user "${user}" rather than the user "root".`;
}
