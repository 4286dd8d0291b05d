import { startSshd } from './testing/sshd.js';
import { generatePlatformKeyPair } from './keys.js';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
const kp = generatePlatformKeyPair();
const s = await startSshd({ authorizedKeys: [kp.publicKey] });
writeFileSync('/tmp/fwk', kp.privateKey, { mode: 0o600 });
const args = ['-i', '/tmp/fwk', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ControlMaster=auto', '-o', 'ControlPath=/tmp/fwcm', '-o', 'ControlPersist=10', '-p', String(s.port), 'root@127.0.0.1'];
for (let i = 0; i < 3; i++) { const t0 = Date.now(); execFileSync('ssh', [...args, 'true'], { stdio: 'ignore' }); console.log('ssh', Date.now() - t0); }
execFileSync('ssh', [...args, '-O', 'exit'], { stdio: 'ignore' });
console.log(s.log().split('\n').slice(-12).join('\n'));
await s.stop();
