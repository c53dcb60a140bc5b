/** A Lambda handler that answers at once: the benchmark's measure of an invocation's own cost. */
export async function handler(event: unknown): Promise<unknown> {
  return event;
}
