/** A listener: what an event passes it depends on the event. */
type Listener = (...args: any[]) => void;

/**
 * Emitter is a small typed event emitter that works the same in browsers,
 * Cocos Creator and Node (node:events is not there in the first two). A
 * listener that throws does not break the client: its error goes to the
 * 'error' listeners, or to console.error when there are none.
 */
export class Emitter<E extends Record<keyof E, Listener> & { error: (e: Error) => void }> {
  private readonly listeners = new Map<keyof E, Set<E[keyof E]>>();

  /** on adds a listener. */
  on<K extends keyof E>(event: K, listener: E[K]): this {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return this;
  }

  /** off removes a listener added with on. */
  off<K extends keyof E>(event: K, listener: E[K]): this {
    this.listeners.get(event)?.delete(listener);
    return this;
  }

  protected emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (err) {
        this.listenerFailed(event, err);
      }
    }
  }

  private listenerFailed(event: keyof E, err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    const errorListeners = this.listeners.get('error');
    if (event === 'error' || errorListeners === undefined || errorListeners.size === 0) {
      console.error(`herald: a '${String(event)}' listener threw:`, e);
      return;
    }
    this.emit('error', ...([e] as Parameters<E['error']>));
  }
}
