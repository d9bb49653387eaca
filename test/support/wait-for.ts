/**
 * Polls `probe` every 50 ms until it returns something other than undefined, and
 * returns that; a probe that throws counts as "not yet". Past the deadline it
 * throws, naming what it waited for and the probe's last error.
 */
export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, deadlineMs = 20_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until the member at `clientUrl` reports exactly one proposal waiting for its outcome (/metrics). */
export async function waitForOnePendingWrite(clientUrl: string, deadlineMs = 5_000): Promise<void> {
  await waitFor('the write to wait in the member', async () => {
    const metrics = await (await fetch(`${clientUrl}/metrics`)).text();
    return /^cairn_proposals_pending 1$/m.test(metrics) ? true : undefined;
  }, deadlineMs);
}
