/**
 * A cloud emulator on the in-memory backend in a process of its own, for bench/clouds.ts:
 * its CPU time is then not Formwork's. Prints one JSON line (its documents), then serves
 * until stdin closes.
 *
 *   tsx bench/cloud-emulator.ts aws
 */
import { loadCloudEmulator } from '../src/providers/emulation/clouds.js';
import { MemoryBackend } from '../src/providers/emulation/hosts.js';

const cloud = process.argv[2] ?? 'aws';
// An account whose Elastic IP quota was raised for the bench (AWS's default of 5 would refuse the sixth node; other clouds ignore it).
const options = { backend: new MemoryBackend(), bootDelayMs: 0, addressQuota: 1000 };
const emu = await (await loadCloudEmulator(cloud))(options);
process.stdout.write(JSON.stringify({ documents: emu.documents(`bench-${cloud}`) }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => void emu.close().then(() => process.exit(0)));
