// The value a promise rejected with; fails the test if it resolved.
export async function rejectionOf<E = Error>(promise: unknown): Promise<E> {
  try {
    await promise;
  } catch (error) {
    return error as E;
  }
  throw new Error("expected the promise to reject");
}
