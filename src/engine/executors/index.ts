import type { Services } from '../../context/services.js';
import type { SshPool } from '../../ssh/client.js';
import type { RoleExecutor } from '../types.js';
import { ansibleExecutor } from './ansible.js';
import { builtinExecutor } from './builtin.js';
import { localExecutor } from './local.js';
import { scriptExecutor } from './script.js';

export { registerBuiltin, unregisterBuiltin, builtinNames } from './builtin.js';
export { localExecutor } from './local.js';
export { scriptExecutor } from './script.js';
export { ansibleExecutor, scanHostKeys } from './ansible.js';
export { builtinExecutor } from './builtin.js';
export { ensurePlatformKey, sshTarget } from './target.js';

/** The standard executors by implementation kind. */
export function defaultExecutors(services: Services, pool: SshPool): Map<string, RoleExecutor> {
  const list = [localExecutor(), builtinExecutor(services, pool), scriptExecutor({ dataDir: services.dataDir, pool }), ansibleExecutor({ dataDir: services.dataDir })];
  return new Map(list.map((e) => [e.kind, e]));
}
