import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.js';

async function imageWith(row: string): Promise<Blob> {
  const db = await openDatabase({});
  try {
    await db.query('CREATE TABLE marks (name text)');
    await db.query('INSERT INTO marks VALUES ($1)', [row]);
    return await db.dump!();
  } finally {
    await db.close();
  }
}

describe('an embedded database started from an image (DatabaseOptions.image)', () => {
  it('when a new in-memory database is given an image, then it holds what the image held', async () => {
    const db = await openDatabase({ image: await imageWith('from the image') });
    try {
      expect(await db.query('SELECT name FROM marks')).toEqual([{ name: 'from the image' }]);
    } finally {
      await db.close();
    }
  });

  it('when a data folder already holds a database, then it opens as it is and the image is not used', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'image-'));
    try {
      const first = await openDatabase({ dataDir: dir, image: await imageWith('first image') });
      await first.query("INSERT INTO marks VALUES ('written later')");
      await first.close();

      const again = await openDatabase({ dataDir: dir, image: await imageWith('second image') });
      try {
        expect(await again.query('SELECT name FROM marks ORDER BY name')).toEqual([{ name: 'first image' }, { name: 'written later' }]);
      } finally {
        await again.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
