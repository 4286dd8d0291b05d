/**
 * What `formwork emulate openstack` hands to users: a clouds.yaml with the emulator as one
 * cloud (password auth, its region; the vendor profile named when one is played), and the
 * Provider document that uses it (`type: openstack`, `settings.cloud`).
 *
 * @example
 *   const file = await writeCloudsYaml(emu, '/tmp/emu', 'emulator');
 *   providerDocument('emulator', 'emulator'); // { kind: 'Provider', name: 'emulator', type: 'openstack', settings: { cloud: 'emulator' } }
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Emulator } from './server.js';

/**
 * The clouds.yaml document for an emulator, as openstacksdk reads it.
 *
 * @example
 *   cloudsDocument(emu, 'emulator').clouds.emulator.auth.auth_url; // 'http://127.0.0.1:5000/identity/v3'
 */
export function cloudsDocument(emu: Emulator, cloud: string): { clouds: Record<string, Record<string, unknown>> } {
  const entry: Record<string, unknown> = {
    auth: { auth_url: emu.authUrl, username: emu.credentials.username, password: emu.credentials.password, project_name: emu.state.identity.projectName, user_domain_name: 'Default', project_domain_name: 'Default' },
    region_name: emu.region,
    interface: 'public',
    identity_api_version: 3,
  };
  if (emu.scenario.profile) entry.profile = emu.scenario.profile;
  return { clouds: { [cloud]: entry } };
}

/**
 * Writes `<dir>/clouds.yaml` (mode 0600: it holds the password) and answers its path.
 *
 * @example
 *   await writeCloudsYaml(emu, dataDir, 'emulator'); // '/…/clouds.yaml'
 */
export async function writeCloudsYaml(emu: Emulator, dir: string, cloud: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'clouds.yaml');
  await writeFile(file, `# Written by formwork emulate openstack (scenario ${emu.scenario.name}); valid while it runs.\n${stringify(cloudsDocument(emu, cloud))}`, { mode: 0o600 });
  return file;
}

/**
 * The Provider document for the emulated cloud.
 *
 * @example
 *   providerDocument('os-emu', 'emulator').settings; // { cloud: 'emulator' }
 */
export function providerDocument(name: string, cloud: string): { kind: 'Provider'; name: string; type: 'openstack'; settings: { cloud: string } } {
  return { kind: 'Provider', name, type: 'openstack', settings: { cloud } };
}
