/** Child of fs-atomic.test.ts: run under `ulimit -f` so that write(2) comes up short. */
import { writeFileAtomic } from '../../agent/src/ota/fs-atomic.js';

const [target, bytes] = process.argv.slice(2);
try {
  writeFileAtomic(target, JSON.stringify({ pad: 'x'.repeat(Number(bytes)) }));
  console.log('written');
} catch (err) {
  console.log(`refused: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
}
