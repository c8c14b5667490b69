/** Ends a listener: the function {@link Emitter.on} returns. */
export type Off = () => void;

/**
 * A small typed event emitter. A listener that throws does not disturb the
 * client: its error is rethrown on its own, where the runtime reports
 * uncaught errors.
 */
export class Emitter<Events> {
  #listeners = new Map<keyof Events, Set<(payload: never) => void>>();

  /** Calls fn with each event of the type, until the returned function is called. */
  on<K extends keyof Events>(type: K, fn: (payload: Events[K]) => void): Off {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(fn);
    return () => this.off(type, fn);
  }

  /** Removes fn from the listeners of the type. */
  off<K extends keyof Events>(type: K, fn: (payload: Events[K]) => void): void {
    this.#listeners.get(type)?.delete(fn);
  }

  /** @internal */
  emit<K extends keyof Events>(type: K, payload: Events[K]): void {
    for (const fn of [...(this.#listeners.get(type) ?? [])]) {
      try {
        (fn as (payload: Events[K]) => void)(payload);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** @internal */
  listens(type: keyof Events): boolean {
    return (this.#listeners.get(type)?.size ?? 0) > 0;
  }
}
