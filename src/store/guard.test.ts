import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FormworkError } from '../core/errors.js';
import { allowTransactionReentry } from '../testing/setup.js';
import { observeReentry } from './guard.js';
import { STORE_ENGINES, type TestStore } from './testing/engines.js';

/** Settles p within ms, or says it hung: a re-entry that waits on itself must fail the test, not time it out. */
async function settle(p: Promise<unknown>, ms = 2000): Promise<{ error?: unknown; value?: unknown; hung?: true }> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<{ hung: true }>((resolve) => (timer = setTimeout(() => resolve({ hung: true }), ms)));
  try {
    return await Promise.race([p.then((value) => ({ value }), (error: unknown) => ({ error })), hung]);
  } finally {
    clearTimeout(timer);
  }
}

function expectReentry(outcome: { error?: unknown; hung?: true }): void {
  expect(outcome.hung, 'the query waited on its own transaction').toBeUndefined();
  expect(outcome.error).toBeInstanceOf(FormworkError);
  expect((outcome.error as FormworkError).code).toBe('TRANSACTION_REENTRY');
}

describe.each(STORE_ENGINES)('transaction re-entry guard on $name', (engine) => {
  let t: TestStore;
  let seen: FormworkError[];
  let stopObserving: () => void;
  beforeEach(async () => {
    allowTransactionReentry('tests of the guard raise it on purpose');
    t = await engine.open();
    seen = [];
    stopObserving = observeReentry((e) => seen.push(e));
  });
  afterEach(async () => {
    stopObserving();
    await t.cleanup();
  });

  it('refuses at once a query through the root handle inside a transaction, and rolls the transaction back', async () => {
    const outcome = await settle(
      t.store.transaction(async (tx) => {
        await tx.objects('nodes').create({ name: 'inside' });
        await t.store.objects('nodes').find('other'); // the root store, not tx
      }),
    );
    expectReentry(outcome);
    expect(await t.store.objects('nodes').find('inside')).toBeUndefined();
    expect(seen.map((e) => e.code)).toEqual(['TRANSACTION_REENTRY']);
  });

  it('refuses it from deeper in the async scope too: after awaits, in a callback, in a nested root transaction', async () => {
    const viaTimer = await settle(
      t.store.transaction(async () => {
        await new Promise((r) => setTimeout(r, 5));
        await new Promise<void>((resolve, reject) => setImmediate(() => t.store.events.latestSeq().then(() => resolve(), reject)));
      }),
    );
    expectReentry(viaTimer);
    const nested = await settle(t.store.transaction(async () => t.store.db.transaction().execute(async () => 1)));
    expectReentry(nested);
  });

  it('still sees a re-entry that the code swallows', async () => {
    const found = await t.store.transaction(async (tx) => {
      await tx.objects('nodes').create({ name: 'n1' });
      return t.store.objects('nodes').find('n1').catch(() => 'swallowed');
    });
    expect(found).toBe('swallowed');
    expect(seen).toHaveLength(1);
    expect(seen[0].message).toContain('pass the transaction');
  });

  it('lets the transaction query through its own handle, and the root handle once it ended', async () => {
    let later: Promise<unknown> | undefined;
    const made = await t.store.transaction(async (tx) => {
      await tx.objects('nodes').create({ name: 'n1' });
      // Made inside the scope but run after the commit: the scope has closed by then.
      later = new Promise((r) => setTimeout(r, 50)).then(() => t.store.objects('nodes').get('n1'));
      return tx.objects('nodes').get('n1');
    });
    expect(made.name).toBe('n1');
    const after = await settle(later!);
    expect(after.error).toBeUndefined();
    expect((after.value as { name: string }).name).toBe('n1');
    expect(seen).toEqual([]);
  });

  it('does not refuse other requests while a transaction is open, nor another database', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const other = await t.reopen(); // a second Store on the same database, as another process
    const tx = t.store.transaction(async (trx) => {
      await trx.objects('nodes').create({ name: 'n1' });
      // A different Store is a different connection (or pool): reading through it is no re-entry.
      expect(await other.objects('nodes').find('nobody')).toBeUndefined();
      entered();
      await held;
    });
    await inside;
    // An unrelated flow (another request) is outside the scope: it may wait, but is not refused.
    const unrelated = t.store.objects('nodes').find('n1');
    release();
    await tx;
    expect(await unrelated.then(() => 'ok')).toBe('ok');
    expect(seen).toEqual([]);
  });
});
