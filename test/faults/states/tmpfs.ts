import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface SmallDisk {
  readonly dir: string;
  /** Writes a file into the free space until the filesystem refuses (ENOSPC); returns the bytes written. */
  fill(): number;
  /** Removes the filler: the space is free again. */
  free(): void;
  /** Unmounts and removes the mount point (the processes using it must have ended). */
  unmount(): void;
}

/** A tmpfs of `sizeMb` of its own, or why there cannot be one here (not root, no mount). */
export function mountSmallDisk(sizeMb: number): SmallDisk | { reason: string } {
  if (process.getuid?.() !== 0) return { reason: 'not root: cannot mount a small filesystem' };
  const dir = mkdtempSync(path.join(tmpdir(), 'disk-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], { stdio: 'pipe', timeout: 10_000 });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    return { reason: `mount -t tmpfs failed: ${String((error as { stderr?: Buffer }).stderr ?? (error as Error).message).trim()}` };
  }
  const filler = path.join(dir, 'filler');
  let mounted = true;
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      let written = 0;
      try {
        // Large writes first, then single pages: tmpfs refuses at page granularity.
        for (const size of [1 << 20, 4096]) {
          const chunk = Buffer.alloc(size, 0x5a);
          try {
            for (;;) written += writeSync(fd, chunk);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          }
        }
      } finally {
        closeSync(fd);
      }
      return written;
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      if (!mounted) return;
      execFileSync('umount', [dir], { stdio: 'pipe', timeout: 10_000 });
      mounted = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
